import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { rolloutCommand } from "../lib/runbook/rolloutCli";
import { CommandEnvironment, Rerun, rerunOn, SECRET_OUTPUTS } from "./types";

export interface QuiesceArgs {
    /**
     * Operator command that pauses the writers (the experiment worker, the
     * pipelines calling export_research_dataset / register_reranker and the
     * /v1/reranker-models/import endpoints). Unset: nothing is paused, and the
     * update says so.
     */
    pauseWriters?: string;
    /** rollout:stepTimeout. */
    timeout: string;
    /** Carries PROTEA_DB_URL: the writers' command gets it in the application's variable (rollout:dbUrlEnv). */
    environment: CommandEnvironment;
    /** Pauses again whenever the rollout is not finished (a re-apply, a resumed backfill). */
    rerun: Rerun;
}

/**
 * Runbook pre-flight step 3: quiesce writes before the migration. The
 * backfill needs a consistent view of every row. Every step after this one
 * resumes the writers if it fails (rollout:resumeOnFailure).
 */
export class Quiesce extends pulumi.ComponentResource {
    constructor(name: string, args: QuiesceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Quiesce", name, {}, opts);
        if (args.pauseWriters) {
            // Frozen once done: a finished rollout never pauses (or resumes) again because an input changed.
            const { stdin, ignoreChanges } = rerunOn(args.rerun, true);
            new command.local.Command(
                `${name}-pause`,
                { create: rolloutCommand("writers", "--action", "pause", "--command", args.pauseWriters, "--timeout", args.timeout), environment: args.environment, stdin },
                { parent: this, ignoreChanges, ...SECRET_OUTPUTS },
            );
        } else {
            pulumi.log.warn("rollout:pauseWriters is not set: no writer is paused; pause them by hand before the backfill", this);
        }
        this.registerOutputs({});
    }
}
