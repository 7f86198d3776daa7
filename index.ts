/**
 * The schema_sha_v2 (T1.6) rollout. On the prod stack it runs against the
 * live database; on a drill stack (one that sets `drill:engine`) it first
 * creates a throwaway clone (DrillDatabase) and runs the very same rollout
 * against it. `pulumi preview` is the dry run, `pulumi up` the rollout, and
 * `npm run rollback -- --stack <name>` (a targeted `pulumi destroy` of the
 * Migration and its dependents) the rollback. See components/rolloutGraph.ts.
 *
 * Before anything acts, the program reads where the database stands
 * (lib/runbook/rolloutPhase.ts) and, on `up`, takes the database's rollout lock for
 * the whole run (lib/runbook/rolloutLock.ts): a second rollout from any stack stops
 * before it changes anything.
 */
import * as pulumi from "@pulumi/pulumi";
import { previewReport } from "./components/previewReport";
import { readStackConfig } from "./lib/config/programConfig";
import { reportProgramErrorsPlainly } from "./lib/process/plainErrors";

reportProgramErrorsPlainly();

export = async () => {
    const { rollout: config, dbUrl, drill } = readStackConfig();
    // In a preview the dry run's probe starts first, while the rest of the program loads: it is the preview's longest part.
    let migrationDeclared: (result: pulumi.Output<unknown>) => void = () => undefined;
    const dryRun = previewReport(config, pulumi.secret(dbUrl), new Promise((resolve) => (migrationDeclared = resolve)));
    const [{ createRollout, DrillDatabase }, { openRolloutRun }] = await Promise.all([import("./components"), import("./lib/runbook/programRun")]);

    const stack = `${pulumi.getProject()}/${pulumi.getStack()}`;
    const reruns = await openRolloutRun(config, { stack, dryRun: pulumi.runtime.isDryRun(), databaseMayNotExistYet: drill !== undefined });

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

    const rollout = createRollout(config, pulumi.secret(dbUrl), { stack, reruns }, drillDatabase ? { dependsOn: [drillDatabase] } : {});
    migrationDeclared(rollout.migration.upgradeMillis);

    return {
        preflightReport: rollout.preflight.report,
        backupPath: rollout.backup.path,
        backupSizeBytes: rollout.backup.sizeBytes,
        backupSha256: rollout.backup.sha256,
        earlierBackups: rollout.backup.earlier,
        backfillDryRun: rollout.backfill.dryRun,
        backfillApplied: rollout.backfill.applied,
        nullCounts: rollout.verification.nullCounts,
        parity: rollout.verification.parity,
        stepMillis: {
            load: drillDatabase?.loadMillis,
            backup: rollout.backup.millis,
            upgrade: rollout.migration.upgradeMillis,
            backfillDryRun: rollout.backfill.dryRunMillis,
            backfillApply: rollout.backfill.applyMillis,
        },
        // Only when there is one: an undefined output makes Pulumi warn on every run.
        /** With rollout:rehearsal: the side-by-side table beside the dumps. */
        ...(rollout.rehearsalReport ? { rehearsalReport: rollout.rehearsalReport.path } : {}),
        /** The dry run: read-only probes, in preview only (components/previewReport.ts). */
        ...(dryRun ? { dryRun } : {}),
    };
};
