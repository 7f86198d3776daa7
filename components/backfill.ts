import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { BackfillCounts } from "../lib/runbook/backfillSummary";
import type { NewColumn } from "../lib/config/config";
import { parseRolloutResult, rolloutCommand } from "../lib/runbook/rolloutCli";
import { budgetArgs, CommandEnvironment, RehearsalBudget, Rerun, rerunOn, ResumeOnFailure, resumeArgs, SECRET_OUTPUTS } from "./types";

export type { BackfillCounts };

/** Per table, what the database shows a backfill run changed. */
export interface BackfillRows {
    [table: string]: { rows: number; nullsBefore: number; nullsAfter: number; written: number };
}

/** What one backfill run reported and did. */
export interface BackfillRun {
    /** The counts the application printed, in a form known, or "not reported". */
    reported: BackfillCounts | "not reported";
    /** The product's own facts, from the database. */
    database: BackfillRows;
    /** The whole (scrubbed) output, 0600, beside the dumps. */
    logFile: string | null;
    millis: number;
}

export interface BackfillArgs {
    /** `<project>/<stack>`: the rollout lock's holder name. */
    stack: string;
    /** Application checkout where the backfill script runs, as configured. */
    appDir: string;
    /** Command that runs the backfill script, e.g. `poetry run python scripts/backfill_schema_sha_v2.py`. */
    backfill: string;
    /** Rows per commit (`--batch-size`). */
    batchSize: number;
    /** Pass `--force`: overwrite populated values. Flipping it re-runs the backfill. */
    force: boolean;
    /** The columns whose NULLs the database counts before and after. */
    newColumns: NewColumn[];
    /** Folder of the full output logs (the backup folder) and their name prefix. */
    logDir: string;
    label: string;
    /** rollout:stepTimeout. */
    timeout: string;
    /** With rollout:rehearsal: the dry run and the apply stop past their budgets (the apply keeps its committed batches). */
    budget?: RehearsalBudget;
    /** Re-run whenever this changes (the migration's id: a re-applied migration has empty columns). */
    migrationId: pulumi.Input<string>;
    /** Runs again until every row is populated (a backfill that died part-way resumes). */
    rerun: Rerun;
    /** Resumes the writers when the apply fails. */
    resume: ResumeOnFailure;
    /** Carries PROTEA_DB_URL. */
    environment: CommandEnvironment;
}

/**
 * The idempotent batched backfill: a `--dry-run` first (in a read-only
 * session), then the apply, holding the rollout lock. Rows already populated
 * are skipped, so a run that died part-way resumes on the next `pulumi up`.
 * The application's output is its own business: it is scrubbed, summarised
 * for Pulumi and kept whole in a log file; the counts that matter come from
 * the database. Delete does nothing: the columns go with the downgrade.
 */
export class Backfill extends pulumi.ComponentResource {
    readonly dryRun: pulumi.Output<BackfillRun>;
    readonly applied: pulumi.Output<BackfillRun>;
    /** Changes whenever the backfill re-runs; verification re-runs on it. */
    readonly appliedId: pulumi.Output<string>;
    /** Wall times of the dry run and the apply, in milliseconds. */
    readonly dryRunMillis: pulumi.Output<number | undefined>;
    readonly applyMillis: pulumi.Output<number | undefined>;

    constructor(name: string, args: BackfillArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Backfill", name, {}, opts);
        const force = args.force ? ["--force"] : [];
        const common = [
            "--stack", args.stack,
            "--app-dir", args.appDir,
            "--backfill", args.backfill,
            "--columns", JSON.stringify(args.newColumns),
            "--log-dir", args.logDir,
            "--label", args.label,
            "--timeout", args.timeout,
        ];
        const triggers = [args.migrationId];
        const { stdin, ignoreChanges } = rerunOn(args.rerun);
        const dryRun = new command.local.Command(
            `${name}-dry-run`,
            { create: rolloutCommand("backfill", "--mode", "dry-run", ...common, ...force, ...budgetArgs(args.budget, "backfillDryRun")), environment: args.environment, triggers, stdin },
            { parent: this, ignoreChanges, ...SECRET_OUTPUTS },
        );
        const apply = new command.local.Command(
            `${name}-apply`,
            {
                create: rolloutCommand("backfill", "--mode", "apply", ...common, "--batch-size", args.batchSize, ...force, ...budgetArgs(args.budget, "backfillApply"), ...resumeArgs(args.resume)),
                environment: args.environment,
                triggers,
                stdin,
            },
            { parent: this, dependsOn: [dryRun], ignoreChanges, ...SECRET_OUTPUTS },
        );
        // The tool's result line is scrubbed numbers and a path: safe to show.
        const parse = (out: string) => parseRolloutResult<BackfillRun & { millis: number }>(out);
        const dry = pulumi.unsecret(dryRun.stdout).apply(parse);
        const applied = pulumi.unsecret(apply.stdout).apply(parse);
        this.dryRun = dry.apply(({ reported, database, logFile, millis }) => ({ reported, database, logFile, millis }));
        this.applied = applied.apply(({ reported, database, logFile, millis }) => ({ reported, database, logFile, millis }));
        this.appliedId = pulumi.all([apply.id, applied]).apply(([id, run]) => `${id} ${run.millis}`);
        this.dryRunMillis = dry.apply((r) => r.millis);
        this.applyMillis = applied.apply((r) => r.millis);
        this.registerOutputs({ dryRun: this.dryRun, applied: this.applied, appliedId: this.appliedId, dryRunMillis: this.dryRunMillis, applyMillis: this.applyMillis });
    }
}
