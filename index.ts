/**
 * The prod stack: the schema_sha_v2 (T1.6) rollout against the live database.
 * `pulumi preview` is the dry run, `pulumi up` the rollout, and
 * `npm run rollback -- --stack prod` (a targeted `pulumi destroy` of the
 * Migration and its dependents) the rollback. See components/rolloutGraph.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import { createRollout } from "./components";
import { readRolloutConfig } from "./lib/stackConfig";

const config = readRolloutConfig();
const rollout = createRollout(config, pulumi.secret(pulumi.runtime.getConfig("rollout:dbUrl")!));

export const preflightReport = rollout.preflight.report;
export const backupPath = rollout.backup.path;
export const backupSizeBytes = rollout.backup.sizeBytes;
export const backupSha256 = rollout.backup.sha256;
export const backfillDryRun = rollout.backfill.dryRun;
export const backfillApplied = rollout.backfill.applied;
export const nullCounts = rollout.verification.nullCounts;
export const parity = rollout.verification.parity;
