import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";

export interface ResumeArgs {
    /** Operator command that resumes the writers paused by Quiesce. Unset: nothing runs. */
    resumeWriters?: string;
}

/** The end of the quiesce window: writers resume once verification has passed. */
export class Resume extends pulumi.ComponentResource {
    constructor(name: string, args: ResumeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Resume", name, {}, opts);
        if (args.resumeWriters) {
            new command.local.Command(`${name}-writers`, { create: args.resumeWriters }, { parent: this });
        }
        this.registerOutputs({});
    }
}
