import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { NewColumn, ParityCutover } from "../lib/config/config";
import { parseRolloutResult, rolloutCommand } from "../lib/runbook/rolloutCli";
import type { NullCount, ParityReport } from "../lib/postgres/schemaChecks";
import { CommandEnvironment, Rerun, rerunOn, ResumeOnFailure, resumeArgs } from "./types";

export interface VerificationArgs {
    /** `<project>/<stack>`, for the way back it names on drift. */
    stack: string;
    /** Columns that must hold no NULL, with the legacy column for the parity report. */
    newColumns: NewColumn[];
    /** How many of the latest rows per table the parity report samples. */
    paritySample: number;
    /** rollout:parityCutover: rows after it must match; the report goes to `reportDir` (the backup folder, as configured). */
    parityCutover?: ParityCutover;
    reportDir: string;
    /** Re-verify whenever this changes (the backfill's run: a forced re-run changes it). */
    backfillRun: pulumi.Input<unknown>;
    /** Runs again until every row is populated. */
    rerun: Rerun;
    /** Resumes the writers when the gate fails. */
    resume: ResumeOnFailure;
    /** Carries PROTEA_DB_URL. */
    environment: CommandEnvironment;
}

/**
 * The runbook's verification as a gate: the migration is still in the
 * database, and `count(*) … IS NULL` is 0 in every new column, or the update
 * fails naming the table and the count. The parity spot-check (legacy vs v2
 * on the latest rows) is reported, not gated: rows from before the parity
 * fix differ by design. With rollout:parityCutover, rows after the fix must
 * match: any that differ fail the gate, their first ids named.
 */
export class Verification extends pulumi.ComponentResource {
    readonly nullCounts: pulumi.Output<NullCount[]>;
    readonly parity: pulumi.Output<ParityReport[]>;

    constructor(name: string, args: VerificationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Verification", name, {}, opts);
        const { stdin, ignoreChanges } = rerunOn(args.rerun);
        const gate = new command.local.Command(
            `${name}-gate`,
            {
                create: rolloutCommand(
                    "verify-backfill",
                    "--stack", args.stack,
                    "--columns", JSON.stringify(args.newColumns),
                    "--parity-sample", args.paritySample,
                    ...(args.parityCutover
                        ? ["--parity-cutover", args.parityCutover.value, ...(args.parityCutover.column ? ["--parity-cutover-column", args.parityCutover.column] : []), "--report-dir", args.reportDir]
                        : []),
                    ...resumeArgs(args.resume),
                ),
                environment: args.environment,
                triggers: [args.backfillRun],
                stdin,
            },
            { parent: this, ignoreChanges },
        );
        // The gate prints counts only, never the URL.
        const result = pulumi.unsecret(gate.stdout).apply((out) => parseRolloutResult<{ nulls: NullCount[]; parity: ParityReport[] }>(out));
        this.nullCounts = result.nulls;
        this.parity = result.parity;
        this.registerOutputs({ nullCounts: this.nullCounts, parity: this.parity });
    }
}
