import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { BackfillCounts, parseBackfillSummary } from "../lib/backfillSummary";
import { inDirectory, stepMillis, timed } from "../lib/shell";
import { CommandEnvironment } from "./types";

// The parser lives in lib/ so the dry-run probe shares it without loading Pulumi.
export type { BackfillCounts };
export { parseBackfillSummary };

export interface BackfillArgs {
    /** Application checkout where the backfill script runs. */
    appDir: string;
    /** Command that runs the backfill script, e.g. `poetry run python scripts/backfill_schema_sha_v2.py`. */
    backfill: string;
    /** Rows per commit (`--batch-size`). */
    batchSize: number;
    /** Pass `--force`: overwrite populated values. Flipping it re-runs the backfill. */
    force: boolean;
    /** Re-run whenever this changes (the migration's id: a re-applied migration has empty columns). */
    migrationId: pulumi.Input<string>;
    /** Carries PROTEA_DB_URL. */
    environment: CommandEnvironment;
}

/**
 * The idempotent batched backfill: a `--dry-run` first (its summary is in
 * the log), then the apply. Rows already populated are skipped, so a run that
 * died part-way resumes on the next `pulumi up`. Delete does nothing: the
 * columns go with the migration's downgrade.
 */
export class Backfill extends pulumi.ComponentResource {
    /** The dry run's counts per table (JSON). */
    readonly dryRun: pulumi.Output<BackfillCounts>;
    /** The apply's counts per table (JSON). */
    readonly applied: pulumi.Output<BackfillCounts>;
    /** Changes whenever the backfill re-runs; verification re-runs on it. */
    readonly appliedId: pulumi.Output<string>;
    /** Wall times of the dry run and the apply, in milliseconds. */
    readonly dryRunMillis: pulumi.Output<number | undefined>;
    readonly applyMillis: pulumi.Output<number | undefined>;

    constructor(name: string, args: BackfillArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Backfill", name, {}, opts);
        const force = args.force ? " --force" : "";
        const triggers = [args.migrationId];
        const dryRun = new command.local.Command(
            `${name}-dry-run`,
            { create: timed("backfill-dry-run", inDirectory(args.appDir, `${args.backfill} --dry-run${force}`)), environment: args.environment, triggers },
            { parent: this },
        );
        const apply = new command.local.Command(
            `${name}-apply`,
            {
                create: timed("backfill-apply", inDirectory(args.appDir, `${args.backfill} --batch-size ${args.batchSize}${force}`)),
                environment: args.environment,
                triggers,
            },
            { parent: this, dependsOn: [dryRun] },
        );
        // Only the parsed counts leave the secret stdout: numbers cannot carry a password.
        this.dryRun = pulumi.unsecret(dryRun.stdout.apply(parseBackfillSummary));
        this.applied = pulumi.unsecret(apply.stdout.apply(parseBackfillSummary));
        this.appliedId = apply.id;
        this.dryRunMillis = pulumi.unsecret(dryRun.stderr.apply((err) => stepMillis(err, "backfill-dry-run")));
        this.applyMillis = pulumi.unsecret(apply.stderr.apply((err) => stepMillis(err, "backfill-apply")));
        this.registerOutputs({
            dryRun: this.dryRun,
            applied: this.applied,
            appliedId: this.appliedId,
            dryRunMillis: this.dryRunMillis,
            applyMillis: this.applyMillis,
        });
    }
}
