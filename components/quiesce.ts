import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";

export interface QuiesceArgs {
    /**
     * Operator command that pauses the writers (the experiment worker, the
     * pipelines calling export_research_dataset / register_reranker and the
     * /v1/reranker-models/import endpoints). Unset: nothing is paused, and the
     * update says so.
     */
    pauseWriters?: string;
}

/**
 * Runbook pre-flight step 3: quiesce writes before the migration. The
 * backfill needs a consistent view of every row.
 */
export class Quiesce extends pulumi.ComponentResource {
    constructor(name: string, args: QuiesceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Quiesce", name, {}, opts);
        if (args.pauseWriters) {
            new command.local.Command(`${name}-pause`, { create: args.pauseWriters }, { parent: this });
        } else {
            pulumi.log.warn("rollout:pauseWriters is not set: no writer is paused; pause them by hand before the backfill", this);
        }
        this.registerOutputs({});
    }
}
