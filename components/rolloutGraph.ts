import * as pulumi from "@pulumi/pulumi";
import type { RolloutConfig } from "../lib/config/config";
import type { PhaseReruns } from "../lib/runbook/rolloutPhase";
import { Backfill } from "./backfill";
import { Backup } from "./backup";
import { Migration } from "./migration";
import { Preflight } from "./preflight";
import { RehearsalReport } from "./rehearsalReport";
import { Quiesce } from "./quiesce";
import { Resume } from "./resume";
import { Verification } from "./verification";
import { commandEnvironment, type RehearsalBudget } from "./types";

export interface Rollout {
    preflight: Preflight;
    backup: Backup;
    quiesce: Quiesce;
    migration: Migration;
    backfill: Backfill;
    verification: Verification;
    resume: Resume;
    /** With rollout:rehearsal: rehearsal and production side by side. */
    rehearsalReport?: RehearsalReport;
}

/**
 * The runbook as one ordered graph, for the prod stack and the drill alike:
 *
 *   Preflight -> Backup -> Quiesce -> Migration -> Backfill -> Verification -> Resume
 *     (-> RehearsalReport, with rollout:rehearsal)
 *
 * `dbUrl` reaches the commands only through their environment, as a secret.
 * `stack` (`<project>/<stack>`) names this rollout as the holder of the
 * database's rollout lock; `reruns` says which steps the database shows are
 * still needed (lib/runbook/rolloutPhase.ts).
 */
export function createRollout(
    config: RolloutConfig,
    dbUrl: pulumi.Input<string>,
    context: { stack: string; reruns: PhaseReruns },
    opts: pulumi.ComponentResourceOptions = {},
): Rollout {
    const { stack, reruns } = context;
    const timeout = config.stepTimeout;
    const budget: RehearsalBudget | undefined = config.rehearsal && { setting: config.rehearsal.setting, ...config.rehearsal.budget };
    // Steps after the pause resume the writers if they fail.
    const resume = { resumeWriters: config.pauseWriters ? config.resumeWriters : undefined, resumeOnFailure: config.resumeOnFailure };
    const environment = pulumi.secret(pulumi.output(dbUrl).apply((url) => commandEnvironment(config, url)));
    // Each step waits for every step before it, not only the previous one: a
    // step without commands (Quiesce with nothing to pause) must not let the
    // next one start early.
    const done: pulumi.Input<pulumi.Resource>[] = opts.dependsOn ? ([] as pulumi.Input<pulumi.Resource>[]).concat(opts.dependsOn as pulumi.Input<pulumi.Resource>[]) : [];
    const after = (...steps: pulumi.Input<pulumi.Resource>[]): pulumi.ComponentResourceOptions => {
        done.push(...steps);
        return { ...opts, dependsOn: [...done] };
    };

    const preflight = new Preflight(
        "preflight",
        {
            appDir: config.appDirSetting,
            alembic: config.alembic,
            expectedHead: config.expectedHead,
            targetRevision: config.targetRevision,
            versionTable: config.alembicVersionTable,
            backupDir: config.backupDirSetting,
            clientTools: config,
            rerun: reruns.apply,
            environment,
        },
        after(),
    );
    const backup = new Backup(
        "backup",
        {
            backupDir: config.backupDirSetting,
            label: config.backupLabel,
            compression: config.backupCompression,
            pgAccess: config.pgAccess,
            container: config.container,
            dbUser: config.dbUser,
            dbName: config.dbName,
            timeout,
            budget,
            rerun: reruns.apply,
            environment,
        },
        { ...after(preflight), protect: config.protect },
    );
    const quiesce = new Quiesce("quiesce", { pauseWriters: config.pauseWriters, timeout, environment, rerun: reruns.finish }, after(backup));
    const migration = new Migration(
        "migration",
        {
            stack,
            appDir: config.appDirSetting,
            alembic: config.alembic,
            expectedHead: config.expectedHead,
            targetRevision: config.targetRevision,
            versionTable: config.alembicVersionTable,
            newColumns: config.newColumns,
            lockTimeout: config.lockTimeout,
            lockRetries: config.lockRetries,
            lockRetryBudget: config.lockRetryBudget,
            timeout,
            budget,
            rerun: reruns.apply,
            resume,
            environment,
        },
        after(quiesce),
    );
    const backfill = new Backfill(
        "backfill",
        {
            stack,
            appDir: config.appDirSetting,
            backfill: config.backfill,
            batchSize: config.batchSize,
            force: config.forceBackfill,
            newColumns: config.newColumns,
            logDir: config.backupDirSetting,
            label: config.backupLabel,
            timeout,
            budget,
            migrationId: migration.appliedId,
            rerun: reruns.finish,
            resume,
            environment,
        },
        after(migration),
    );
    const verification = new Verification(
        "verification",
        {
            stack,
            newColumns: config.newColumns,
            paritySample: config.paritySample,
            parityCutover: config.parityCutover,
            reportDir: config.backupDirSetting,
            backfillRun: backfill.appliedId,
            rerun: reruns.finish,
            resume,
            environment,
        },
        after(backfill),
    );
    const resumeWriters = new Resume("resume", { resumeWriters: config.resumeWriters, timeout, environment, rerun: reruns.finish }, after(verification));
    const rehearsalReport = budget
        ? new RehearsalReport(
              "rehearsal-report",
              {
                  budget,
                  dir: config.backupDirSetting,
                  label: config.backupLabel,
                  stepMillis: { backup: backup.millis, upgrade: migration.upgradeMillis, backfillDryRun: backfill.dryRunMillis, backfillApply: backfill.applyMillis },
                  environment,
              },
              after(resumeWriters),
          )
        : undefined;
    return { preflight, backup, quiesce, migration, backfill, verification, resume: resumeWriters, rehearsalReport };
}
