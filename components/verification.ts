import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { NewColumn } from "../lib/config";
import { parseRolloutResult, rolloutCommand } from "../lib/rolloutCli";
import type { NullCount, ParityReport } from "../lib/schemaChecks";
import { CommandEnvironment } from "./types";

export interface VerificationArgs {
    /** Columns that must hold no NULL, with the legacy column for the parity report. */
    newColumns: NewColumn[];
    /** How many of the latest rows per table the parity report samples. */
    paritySample: number;
    /** Re-verify whenever this changes (the backfill's id and counts: a forced re-run changes them). */
    backfillRun: pulumi.Input<unknown>;
    /** Carries PROTEA_DB_URL. */
    environment: CommandEnvironment;
}

/**
 * The runbook's verification as a gate: `count(*) … IS NULL` must be 0 in
 * every new column, or the update fails naming the table and the count. The
 * parity spot-check (legacy vs v2 on the latest rows) is reported, not gated:
 * rows from before the parity fix differ by design.
 */
export class Verification extends pulumi.ComponentResource {
    readonly nullCounts: pulumi.Output<NullCount[]>;
    readonly parity: pulumi.Output<ParityReport[]>;

    constructor(name: string, args: VerificationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Verification", name, {}, opts);
        const gate = new command.local.Command(
            `${name}-gate`,
            {
                create: rolloutCommand("verify-backfill", "--columns", JSON.stringify(args.newColumns), "--parity-sample", args.paritySample),
                environment: args.environment,
                triggers: [args.backfillRun],
            },
            { parent: this },
        );
        const result = pulumi.unsecret(gate.stdout).apply((out) => parseRolloutResult<{ nulls: NullCount[]; parity: ParityReport[] }>(out));
        this.nullCounts = result.nulls;
        this.parity = result.parity;
        this.registerOutputs({ nullCounts: this.nullCounts, parity: this.parity });
    }
}
