/**
 * The schema_sha_v2 (T1.6) rollout. On the prod stack it runs against the
 * live database; on a drill stack (one that sets `drill:engine`) it first
 * creates a throwaway clone (DrillDatabase) and runs the very same rollout
 * against it. `pulumi preview` is the dry run, `pulumi up` the rollout, and
 * `npm run rollback -- --stack <name>` (a targeted `pulumi destroy` of the
 * Migration and its dependents) the rollback. See components/rolloutGraph.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import { createRollout, DrillDatabase, previewReport } from "./components";
import { readStackConfig } from "./lib/programConfig";

const { rollout: config, dbUrl, drill } = readStackConfig();

const drillDatabase = drill
    ? new DrillDatabase("drill", {
          engine: drill.engine,
          port: drill.port,
          password: pulumi.secret(drill.password),
          url: pulumi.secret(dbUrl),
          sourceDump: drill.sourceDump,
          sample: drill.sample,
          restoreJobs: config.restoreJobs,
          appDir: config.appDir,
          alembic: config.alembic,
          seed: drill.seed,
          expectedHead: config.expectedHead,
          stateDir: drill.stateDir,
          image: drill.image,
          containerName: drill.containerName,
      })
    : undefined;

const rollout = createRollout(config, pulumi.secret(dbUrl), drillDatabase ? { dependsOn: [drillDatabase] } : {});

export const preflightReport = rollout.preflight.report;
export const backupPath = rollout.backup.path;
export const backupSizeBytes = rollout.backup.sizeBytes;
export const backupSha256 = rollout.backup.sha256;
export const backfillDryRun = rollout.backfill.dryRun;
export const backfillApplied = rollout.backfill.applied;
export const nullCounts = rollout.verification.nullCounts;
export const parity = rollout.verification.parity;
export const stepMillis = {
    load: drillDatabase?.loadMillis,
    backup: rollout.backup.millis,
    upgrade: rollout.migration.upgradeMillis,
    backfillDryRun: rollout.backfill.dryRunMillis,
    backfillApply: rollout.backfill.applyMillis,
};

/** The dry run: read-only probes, in preview only (components/previewReport.ts). */
export const dryRun = previewReport(config, pulumi.secret(dbUrl));
