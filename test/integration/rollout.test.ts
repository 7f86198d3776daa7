/**
 * The prod-shaped stack (url access) under the real engine, against a real
 * PostgreSQL cluster and the PROTEA fixture: preview, up, idempotent re-up,
 * forced backfill, rollback, re-apply, restore, and the faults.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { countRows, columnExists, indexExists, installWriteLog, writeLogStats } from "./helpers/db";
import { newTestStack, npmRun as runNpmScript, TestStack } from "./helpers/engine";
import { alembic, alembicCurrent, EXPECTED_HEAD, expectSuccess, FIXTURE_PYTHON, fixtureStackConfig, PROJECT_ROOT, seedSample } from "./helpers/fixture";
import { DatabaseSnapshot, filesIn, snapshotDatabase, watchProcessList } from "./helpers/snapshots";

/** The dumps in a folder (beside them: their .sha256 and the backfill's logs). */
const dumpsIn = (dir: string) => filesIn(dir).filter((f) => f.endsWith(".dump"));

process.env.PYTHONDONTWRITEBYTECODE = "1";

const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll });
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-rollout-"));
const backupDir = path.join(workDir, "backups");
const engineOutput: string[] = [];
const onOutput = (out: string) => engineOutput.push(out);
const stacks: TestStack[] = [];

function stackConfig(overrides: Record<string, string> = {}) {
    return fixtureStackConfig(cluster().sqlalchemyUrl, backupDir, {
        pauseWriters: `touch ${path.join(workDir, "paused")}`,
        resumeWriters: `touch ${path.join(workDir, "resumed")}`,
        ...overrides,
    });
}

async function createStack(overrides: Record<string, string> = {}): Promise<TestStack> {
    const testStack = await newTestStack(PROJECT_ROOT, stackConfig(overrides));
    stacks.push(testStack);
    return testStack;
}

const npmRun = (script: string, args: string[], env: Record<string, string>) => runNpmScript(PROJECT_ROOT, script, args, env);

async function schemaState() {
    const config = cluster().clientConfig;
    return {
        datasetColumn: await columnExists(config, "dataset", "schema_sha_v2"),
        rerankerColumn: await columnExists(config, "reranker_model", "schema_sha_v2"),
        datasetIndex: await indexExists(config, "ix_dataset_schema_sha_v2"),
        rerankerIndex: await indexExists(config, "ix_reranker_model_schema_sha_v2"),
    };
}
const ALL_PRESENT = { datasetColumn: true, rerankerColumn: true, datasetIndex: true, rerankerIndex: true };
const ALL_ABSENT = { datasetColumn: false, rerankerColumn: false, datasetIndex: false, rerankerIndex: false };

const snapshot = () => snapshotDatabase(cluster().clientConfig, { ...cluster().libpqEnv });

afterAll(async () => {
    for (const s of stacks.reverse()) await s.remove().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
});

describe("the rollout on the prod-shaped stack", () => {
    let main: TestStack;
    let beforeRollout: DatabaseSnapshot;
    let beforeReapply: DatabaseSnapshot;

    beforeAll(async () => {
        const url = cluster().sqlalchemyUrl;
        expectSuccess(await alembic(url, "upgrade", EXPECTED_HEAD), "alembic upgrade to the expected head");
        expectSuccess(await seedSample(url), "seed");
        main = await createStack();
        beforeRollout = await snapshot();
    });

    it("preview changes nothing: same schema, same rows, no dump", async () => {
        const preview = await main.stack.preview({ onOutput });
        expect(preview.changeSummary.create).toBeGreaterThanOrEqual(15);
        expect(await snapshot()).toEqual(beforeRollout);
        expect(filesIn(backupDir)).toEqual([]);
        expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
    });

    it("up migrates, backfills and verifies, behind a verified 0600 dump; the password never shows in the process list", async () => {
        const stopWatching = watchProcessList(cluster().password);
        const started = Date.now();
        const up = await main.stack.up({ onOutput });
        const processList = stopWatching();
        expect(up.summary.result).toBe("succeeded");
        expect(processList.hits).toEqual([]);

        expect(await schemaState()).toEqual(ALL_PRESENT);
        expect(await countRows(cluster().clientConfig, "dataset", "schema_sha_v2 IS NULL")).toBe(0);
        expect(await countRows(cluster().clientConfig, "reranker_model", "schema_sha_v2 IS NULL")).toBe(0);

        const outputs = up.outputs;
        const dump = outputs.backupPath.value as string;
        expect(path.dirname(dump)).toBe(backupDir);
        expect(path.basename(dump)).toMatch(/^pre-t16-\d{8}-\d{6}\.dump$/);
        expect(dumpsIn(backupDir)).toEqual([path.basename(dump)]);
        expect(fs.readFileSync(`${dump}.sha256`, "utf8")).toContain(outputs.backupSha256.value);
        expect(fs.statSync(dump).mode & 0o777).toBe(0o600);
        expect(outputs.backupSizeBytes.value).toBe(fs.statSync(dump).size);
        expect(outputs.backupSha256.value).toMatch(/^[0-9a-f]{64}$/);

        const datasets = await countRows(cluster().clientConfig, "dataset");
        const models = await countRows(cluster().clientConfig, "reranker_model");
        // `would_update=` in the fixture's own format (PROTEA's: the forced re-run below).
        const dryRunReported = outputs.backfillDryRun.value.reported.dataset;
        expect(dryRunReported.would_update ?? dryRunReported.updated).toBe(datasets);
        expect(Object.keys(dryRunReported).sort()).toEqual(["skipped", "would_update"]);
        expect(outputs.backfillApplied.value.reported.dataset).toMatchObject({ updated: datasets, skipped: 0 });
        expect(outputs.backfillApplied.value.reported.reranker_model).toMatchObject({ updated: models, skipped: 0 });
        // The product's own facts come from the database, whatever the script prints.
        expect(outputs.backfillApplied.value.database.dataset).toEqual({ rows: datasets, nullsBefore: datasets, nullsAfter: 0, written: datasets });
        expect(outputs.backfillApplied.value.database.reranker_model).toEqual({ rows: models, nullsBefore: models, nullsAfter: 0, written: models });
        expect(outputs.nullCounts.value).toEqual([
            { table: "dataset", column: "schema_sha_v2", nulls: 0, rows: datasets },
            { table: "reranker_model", column: "schema_sha_v2", nulls: 0, rows: models },
        ]);
        expect(outputs.parity.value.map((p: { sampled: number }) => p.sampled)).toEqual([Math.min(10, datasets), 10]);
        // Made by this run, not left by an earlier one.
        for (const marker of ["paused", "resumed"]) expect(fs.statSync(path.join(workDir, marker)).mtimeMs).toBeGreaterThanOrEqual(started - 1000);
    });

    it("a second up changes nothing and does not re-run the backfill", async () => {
        await installWriteLog(cluster().clientConfig, ["dataset", "reranker_model"]);
        const up = await main.stack.up({ onOutput });
        expect(up.summary.result).toBe("succeeded");
        expect(Object.keys(up.summary.resourceChanges ?? {})).toEqual(["same"]);
        expect((await writeLogStats(cluster().clientConfig, "dataset")).rowsWritten).toBe(0);
        expect((await writeLogStats(cluster().clientConfig, "reranker_model")).rowsWritten).toBe(0);
    });

    it("forceBackfill=true re-runs the backfill with --force; a backfill printing PROTEA's own format is read as well", async () => {
        await main.stack.setConfig("rollout:forceBackfill", { value: "true" });
        // The re-run prints exactly what PROTEA's script prints (`canonical schema_sha_v2 = …`, `db = <URL>`,
        // `[table] …` lines, one `summary:` line): how an application prints is its own business.
        process.env.PROTEA_BACKFILL_OUTPUT = "protea";
        const up = await main.stack.up({ onOutput }).finally(() => delete process.env.PROTEA_BACKFILL_OUTPUT);
        // A changed command runs again as an update (the provider re-runs create).
        expect(up.summary.resourceChanges?.update).toBeGreaterThanOrEqual(2);
        const models = await countRows(cluster().clientConfig, "reranker_model");
        const datasets = await countRows(cluster().clientConfig, "dataset");
        // PROTEA's script says `updated=` even on a dry run; the product's own counts come from the database.
        expect(Object.keys(up.outputs.backfillDryRun.value.reported.dataset).sort()).toEqual(["skipped", "updated"]);
        expect(up.outputs.backfillDryRun.value.reported.dataset.updated).toBe(datasets);
        expect(up.outputs.backfillApplied.value.reported.reranker_model).toMatchObject({ updated: models });
        expect(up.outputs.backfillApplied.value.database.reranker_model).toMatchObject({ rows: models, nullsAfter: 0 });
        const writes = await writeLogStats(cluster().clientConfig, "reranker_model");
        expect(writes).toMatchObject({ rowsWritten: models, rowsWrittenTwice: 0 });
        await main.stack.setConfig("rollout:forceBackfill", { value: "false" });
    });

    it("npm run rollback downgrades, verifies and keeps the dump; a later up re-applies cleanly", async () => {
        const dumps = dumpsIn(backupDir);
        const rollback = await npmRun("rollback", ["--stack", main.stack.name, "--yes"], main.env);
        engineOutput.push(rollback.output);
        expect(rollback.code, rollback.output).toBe(0);
        expect(rollback.output).toContain("rollback succeeded");
        expect(await schemaState()).toEqual(ALL_ABSENT);
        expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
        expect(dumpsIn(backupDir)).toEqual(dumps);
        // The stack's outputs no longer report what the rollback removed.
        const afterRollback = await main.stack.outputs();
        expect(afterRollback.nullCounts).toBeUndefined();
        expect(afterRollback.backfillApplied).toBeUndefined();
        expect(String(afterRollback.migration?.value)).toMatch(/^rolled back at /);

        beforeReapply = await snapshot();
        const up = await main.stack.up({ onOutput });
        // Every re-apply is preceded by a fresh verified dump; the earlier one stays, listed.
        expect(dumpsIn(backupDir)).toHaveLength(dumps.length + 1);
        expect(up.outputs.backupPath.value).not.toBe(path.join(backupDir, dumps[0]));
        expect(up.outputs.earlierBackups.value.map((b: { path: string }) => b.path)).toEqual([path.join(backupDir, dumps[0])]);
        expect(up.summary.result).toBe("succeeded");
        expect(await schemaState()).toEqual(ALL_PRESENT);
        expect(await countRows(cluster().clientConfig, "dataset", "schema_sha_v2 IS NULL")).toBe(0);
        expect(await countRows(cluster().clientConfig, "reranker_model", "schema_sha_v2 IS NULL")).toBe(0);
    });

    it("npm run restore returns the database to its pre-rollout schema and data", async () => {
        const refused = await npmRun("restore", ["--stack", main.stack.name, "--confirm", "wrong-db"], main.env);
        expect(refused.code).not.toBe(0);
        expect(refused.output).toContain(`pass --confirm ${cluster().database}`);
        expect(await schemaState()).toEqual(ALL_PRESENT);

        const restore = await npmRun("restore", ["--stack", main.stack.name, "--confirm", cluster().database], main.env);
        engineOutput.push(restore.output);
        expect(restore.code, restore.output).toBe(0);
        // The dump that guards the current apply: the one taken right before the re-apply.
        expect(await snapshot()).toEqual(beforeReapply);
        expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
        // The state no longer claims a migration the database does not have; the dumps' record stays.
        const types = (await main.stack.exportStack()).deployment.resources.map((r: { type: string }) => r.type);
        for (const gone of ["protea:rollout:Migration", "protea:rollout:Backfill", "protea:rollout:Verification"]) expect(types).not.toContain(gone);
        expect(types).toContain("protea:rollout:Backup");
        const outputs = await main.stack.outputs();
        expect(outputs.restoredFrom.value.path).toBe(outputs.backupPath.value);
        expect(outputs.nullCounts).toBeUndefined();
    });

    it("a wrong expectedHead stops the update before any change, naming both revisions", async () => {
        const before = await snapshot();
        const dumps = dumpsIn(backupDir);
        const wrong = await createStack({ expectedHead: "0123456789ab" });
        const failure = await wrong.stack.up({ onOutput }).then(() => undefined, (err: Error) => err.message);
        expect(failure).toContain("alembic current is 9d2fb5a07e4c but rollout:expectedHead is 0123456789ab");
        expect(failure).toContain("reconcile with the deployer");
        expect(await snapshot()).toEqual(before);
        expect(dumpsIn(backupDir)).toEqual(dumps);
    });

    it("a migration that cannot get its lock within its tries fails, naming the session in the way, and leaves the schema as it was", async () => {
        const locked = await createStack({ lockTimeout: "1s", lockRetryBudget: "5s" });
        await locked.stack.setConfig("rollout:backupDir", { value: path.join(workDir, "locked-backups") });
        const holder = new Client({ ...cluster().clientConfig, application_name: "long report" });
        await holder.connect();
        try {
            // A long transaction that has read reranker_model: ALTER TABLE must wait for it.
            await holder.query("BEGIN; LOCK TABLE reranker_model IN ACCESS SHARE MODE");
            const holderPid = (await holder.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
            const failure = await locked.stack.up({ onOutput }).then(() => "", (err: Error) => err.message);
            // The holder had held its lock longer than one try may wait by the time the migration came: no try queued writers behind it.
            expect(failure).toContain("could not get its locks: 0 tries with lock_timeout 1000 ms within 5 s");
            expect(failure).toContain("each try's transaction rolled back, nothing changed");
            expect(failure).toContain(`blocked by pid ${holderPid} (user ${cluster().user}, application "long report", idle in transaction for `);
            expect(failure).toContain("holds AccessShareLock on reranker_model");
            expect(failure).toMatch(/migration-upgrade/);
        } finally {
            await holder.query("ROLLBACK");
            await holder.end();
        }
        // alembic's transaction rolled back: neither table changed.
        expect(await schemaState()).toEqual(ALL_ABSENT);
        expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
    });

    it("a backfill that dies mid-table fails the update; the next up resumes where it stopped, writing every row exactly once", async () => {
        // Batches of 10: the datasets in one, then reranker_model's 51 rows in six; the fault after three batches stops mid-table.
        const faulty = await createStack({ batchSize: "10", backfill: `PROTEA_BACKFILL_FAIL_AFTER_BATCHES=3 ${FIXTURE_PYTHON} scripts/backfill_schema_sha_v2.py` });
        await faulty.stack.setConfig("rollout:backupDir", { value: path.join(workDir, "faulty-backups") });
        // Watching from before the first write: a row written by the failed run and again by the resumed one would show.
        await installWriteLog(cluster().clientConfig, ["dataset", "reranker_model"]);
        const failure = await faulty.stack.up({ onOutput }).then(() => undefined, (err: Error) => err.message);
        expect(failure).toMatch(/backfill-apply/);
        expect(failure).toContain("committed batches stay");
        expect(await schemaState()).toEqual(ALL_PRESENT);
        const models = await countRows(cluster().clientConfig, "reranker_model");
        const datasets = await countRows(cluster().clientConfig, "dataset");
        expect(datasets).toBeLessThanOrEqual(10);
        expect(await countRows(cluster().clientConfig, "dataset", "schema_sha_v2 IS NULL")).toBe(0);
        expect(await countRows(cluster().clientConfig, "reranker_model", "schema_sha_v2 IS NOT NULL")).toBe(20);

        await faulty.stack.setConfig("rollout:backfill", { value: `${FIXTURE_PYTHON} scripts/backfill_schema_sha_v2.py` });
        const up = await faulty.stack.up({ onOutput });
        expect(up.summary.result).toBe("succeeded");
        expect(await countRows(cluster().clientConfig, "dataset", "schema_sha_v2 IS NULL")).toBe(0);
        expect(await countRows(cluster().clientConfig, "reranker_model", "schema_sha_v2 IS NULL")).toBe(0);
        expect(await writeLogStats(cluster().clientConfig, "dataset")).toMatchObject({ rowsWritten: datasets, rowsWrittenTwice: 0 });
        expect(await writeLogStats(cluster().clientConfig, "reranker_model")).toMatchObject({ rowsWritten: models, rowsWrittenTwice: 0 });
        expect(up.outputs.backfillApplied.value.reported.reranker_model).toMatchObject({ updated: models - 20, skipped: 20 });
        expect(up.outputs.backfillApplied.value.database.reranker_model).toMatchObject({ nullsBefore: models - 20, nullsAfter: 0 });
        const rollback = await npmRun("rollback", ["--stack", faulty.stack.name, "--yes"], faulty.env);
        expect(rollback.code, rollback.output).toBe(0);
    });

    it("an unreachable database, a missing dbUrl and an unknown pgAccess each fail with the key or command that fixes it", async () => {
        const unreachable = await createStack();
        await unreachable.stack.setConfig("rollout:dbUrl", { value: "postgresql+psycopg://protea:nope@127.0.0.1:1/protea", secret: true });
        const down = await unreachable.stack.up({ onOutput }).then(() => "", (err: Error) => err.message);
        expect(down).toContain("the database does not answer at 127.0.0.1:1");
        expect(down).toContain("check rollout:dbUrl");

        const missing = await createStack();
        await missing.stack.removeConfig("rollout:dbUrl");
        const noUrl = await missing.stack.preview().then(() => "", (err: Error) => err.message);
        expect(noUrl).toContain("rollout:dbUrl is not set: run `pulumi config set --secret rollout:dbUrl");

        const badAccess = await createStack({ pgAccess: "ssh" });
        const access = await badAccess.stack.preview().then(() => "", (err: Error) => err.message);
        expect(access).toContain('rollout:pgAccess must be "docker-exec" or "url", got "ssh"');
    });

    it("the password appears in no engine output and not in the exported state", async () => {
        const password = cluster().password;
        expect(engineOutput.join("").length).toBeGreaterThan(1000);
        expect(engineOutput.join("")).not.toContain(password);
        // The CLI itself, as an operator runs it (the Automation API's export shows secrets).
        const exported = execFileSync("pulumi", ["stack", "export", "--stack", main.stack.name], { cwd: PROJECT_ROOT, env: { ...process.env, ...main.env }, encoding: "utf8" });
        expect(exported).toContain("ciphertext");
        expect(exported).not.toContain(password);
    });
});
