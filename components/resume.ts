import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { rolloutCommand } from "../lib/runbook/rolloutCli";
import { CommandEnvironment, Rerun, rerunOn, SECRET_OUTPUTS } from "./types";

export interface ResumeArgs {
    /** Operator command that resumes the writers paused by Quiesce. Unset: nothing runs. */
    resumeWriters?: string;
    /** rollout:stepTimeout. */
    timeout: string;
    /** Carries PROTEA_DB_URL: the writers' command gets it in the application's variable (rollout:dbUrlEnv). */
    environment: CommandEnvironment;
    /** Resumes again whenever Quiesce paused again. */
    rerun: Rerun;
}

/** The end of the quiesce window: writers resume once verification has passed. */
export class Resume extends pulumi.ComponentResource {
    constructor(name: string, args: ResumeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Resume", name, {}, opts);
        if (args.resumeWriters) {
            // Frozen once done: a finished rollout never pauses (or resumes) again because an input changed.
            const { stdin, ignoreChanges } = rerunOn(args.rerun, true);
            new command.local.Command(
                `${name}-writers`,
                { create: rolloutCommand("writers", "--action", "resume", "--command", args.resumeWriters, "--timeout", args.timeout), environment: args.environment, stdin },
                { parent: this, ignoreChanges, ...SECRET_OUTPUTS },
            );
        }
        this.registerOutputs({});
    }
}
