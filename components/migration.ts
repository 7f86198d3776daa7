import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { NewColumn } from "../lib/config/config";
import { parseRolloutResult, rolloutCommand, versionTableArgs } from "../lib/runbook/rolloutCli";
import { budgetArgs, CommandEnvironment, RehearsalBudget, Rerun, rerunOn, ResumeOnFailure, resumeArgs, SECRET_OUTPUTS } from "./types";

export interface MigrationArgs {
    /** `<project>/<stack>`: names this rollout as the holder of the database's rollout lock. */
    stack: string;
    /** Application checkout where alembic runs, as configured (resolved by the tool at run time). */
    appDir: string;
    /** Command that runs alembic in `appDir`. */
    alembic: string;
    /** Revision a rollback downgrades to. */
    expectedHead: string;
    /** Revision the upgrade goes to. */
    targetRevision: string;
    /** alembic's version table, where the gates read `alembic current`. */
    versionTable: string;
    /** Columns and indexes the upgrade must create and the downgrade must drop. */
    newColumns: NewColumn[];
    /** The lock-aware apply (lib/runbook/lockAwareApply.ts): lock_timeout of each try, e.g. "2s"; tries after the first; their time budget. */
    lockTimeout: string;
    lockRetries: number;
    lockRetryBudget: string;
    /** With rollout:rehearsal: the upgrade stops, uncommitted, past its budget. */
    budget?: RehearsalBudget;
    /** rollout:stepTimeout. */
    timeout: string;
    /** Checks the database still has the migration whenever it shows it does not. */
    rerun: Rerun;
    /** Resumes the writers when the upgrade fails after they were paused. */
    resume: ResumeOnFailure;
    /** Carries PROTEA_DB_URL. */
    environment: CommandEnvironment;
}

/**
 * The additive migration, one invocation of the project's tool per action,
 * each holding the database's rollout lock and gated immediately before its
 * DDL. Create: alembic current must be the expected head, then the upgrade,
 * then every column and index checked present. Delete (the rollback): alembic
 * current must be the target, then the downgrade, then all checked absent.
 * Update (an input changed, or the database lost the migration): a read-only
 * check that the database still has it, which stops the run on drift.
 */
export class Migration extends pulumi.ComponentResource {
    /** Changes whenever the migration is (re)applied; dependents re-run on it. */
    readonly appliedId: pulumi.Output<string>;
    /** Wall time of `alembic upgrade`, in milliseconds. */
    readonly upgradeMillis: pulumi.Output<number | undefined>;

    constructor(name: string, args: MigrationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Migration", name, {}, opts);
        const common = [
            "--stack", args.stack,
            "--app-dir", args.appDir,
            "--alembic", args.alembic,
            "--expected-head", args.expectedHead,
            "--target-revision", args.targetRevision,
            ...versionTableArgs(args.versionTable),
            "--columns", JSON.stringify(args.newColumns),
        ];
        const lockAware = ["--lock-timeout", args.lockTimeout, "--lock-retries", args.lockRetries, "--lock-budget", args.lockRetryBudget, "--timeout", args.timeout];
        const { stdin, ignoreChanges } = rerunOn(args.rerun);
        const upgrade = new command.local.Command(
            `${name}-upgrade`,
            {
                create: rolloutCommand("migrate", "--direction", "up", ...common, ...lockAware, ...budgetArgs(args.budget, "upgrade"), ...resumeArgs(args.resume)),
                update: rolloutCommand("migrate", "--direction", "check", ...common, ...resumeArgs(args.resume)),
                delete: rolloutCommand("migrate", "--direction", "down", ...common, ...lockAware),
                environment: args.environment,
                stdin,
            },
            { parent: this, deleteBeforeReplace: true, ignoreChanges, ...SECRET_OUTPUTS },
        );
        this.appliedId = upgrade.id;
        // The tool's result line holds numbers and revisions only.
        this.upgradeMillis = pulumi.unsecret(upgrade.stdout).apply((out) => {
            try {
                return parseRolloutResult<{ direction: string; millis?: number }>(out).millis;
            } catch {
                return undefined;
            }
        });
        this.registerOutputs({ appliedId: this.appliedId, upgradeMillis: this.upgradeMillis });
    }
}
