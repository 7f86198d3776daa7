import * as pulumi from "@pulumi/pulumi";
import type { RolloutConfig } from "../lib/config";
import { Backfill } from "./backfill";
import { Backup } from "./backup";
import { Migration } from "./migration";
import { Preflight } from "./preflight";
import { Quiesce } from "./quiesce";
import { Resume } from "./resume";
import { Verification } from "./verification";

export interface Rollout {
    preflight: Preflight;
    backup: Backup;
    quiesce: Quiesce;
    migration: Migration;
    backfill: Backfill;
    verification: Verification;
    resume: Resume;
}

/**
 * The runbook as one ordered graph, for the prod stack and the drill alike:
 *
 *   Preflight -> Backup -> Quiesce -> Migration -> Backfill -> Verification -> Resume
 *
 * `dbUrl` reaches the commands only through their environment, as a secret.
 */
export function createRollout(config: RolloutConfig, dbUrl: pulumi.Input<string>, opts: pulumi.ComponentResourceOptions = {}): Rollout {
    const environment = pulumi.secret(pulumi.output(dbUrl).apply((url) => ({ PROTEA_DB_URL: url })));
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
        { appDir: config.appDir, alembic: config.alembic, expectedHead: config.expectedHead, targetRevision: config.targetRevision, environment },
        after(),
    );
    const backup = new Backup(
        "backup",
        {
            backupDir: config.backupDir,
            label: config.backupLabel,
            pgAccess: config.pgAccess,
            container: config.container,
            dbUser: config.dbUser,
            dbName: config.dbName,
            environment,
        },
        { ...after(preflight), protect: config.protect },
    );
    const quiesce = new Quiesce("quiesce", { pauseWriters: config.pauseWriters }, after(backup));
    const migration = new Migration(
        "migration",
        {
            appDir: config.appDir,
            alembic: config.alembic,
            expectedHead: config.expectedHead,
            targetRevision: config.targetRevision,
            newColumns: config.newColumns,
            lockTimeout: config.lockTimeout,
            environment,
        },
        after(quiesce),
    );
    const backfill = new Backfill(
        "backfill",
        {
            appDir: config.appDir,
            backfill: config.backfill,
            batchSize: config.batchSize,
            force: config.forceBackfill,
            migrationId: migration.appliedId,
            environment,
        },
        after(migration),
    );
    const verification = new Verification(
        "verification",
        {
            newColumns: config.newColumns,
            paritySample: config.paritySample,
            backfillRun: pulumi.all([backfill.appliedId, backfill.applied]),
            environment,
        },
        after(backfill),
    );
    const resume = new Resume("resume", { resumeWriters: config.resumeWriters }, after(verification));
    return { preflight, backup, quiesce, migration, backfill, verification, resume };
}
