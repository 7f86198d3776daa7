/**
 * The runbook's steps by hand (no Pulumi) against a throwaway cluster and the
 * PROTEA fixture: migrate to the expected head, seed, upgrade to T1.6, backfill
 * (dry run, apply, idempotent rerun, interrupted run and resume, --force),
 * downgrade, and finally stop the cluster. The tests build on each other, in
 * order, like the runbook.
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isProcessAlive } from "../../lib/process/processes";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import {
    clearWriteLog,
    columnExists,
    countRows,
    indexExists,
    installWriteLog,
    queryRows,
    queryScalar,
    removeWriteLog,
    writeLogStats,
} from "./helpers/db";
import {
    EXPECTED_HEAD,
    T16_REVISION,
    alembic,
    alembicCurrent,
    backfill,
    expectSuccess,
    parseBackfillSummary,
    requireFixturePython,
    seedSample,
    type ProcessResult,
} from "./helpers/fixture";

const TABLES = ["dataset", "reranker_model"] as const;
const DATASETS = 5;
const RERANKER_MODELS = 51;
// seed_sample.py leaves every fifth model without a dataset.
const UNLINKED_MODELS = Math.floor(RERANKER_MODELS / 5);
const LINKED_MODELS = RERANKER_MODELS - UNLINKED_MODELS;
const EMBEDDING_ROWS = 2_000;
// A digest from a stale registry, pre-set on dataset 1 to make the copy rule visible.
const STALE_DIGEST = "feedfacecafe";
const FAIL_AFTER = "PROTEA_BACKFILL_FAIL_AFTER_BATCHES";

beforeAll(() => {
    requireFixturePython();
});
const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll }, { durabilityOff: true });

const timings: Array<{ step: string; seconds: number }> = [];
afterAll(() => {
    if (timings.length > 0) console.table(timings);
});

/** Records the wall time and checks no output ever carries the password. */
function observed(step: string, result: ProcessResult): ProcessResult {
    timings.push({ step, seconds: Number((result.durationMs / 1000).toFixed(2)) });
    expect(result.stdout + result.stderr).not.toContain(cluster().password);
    return result;
}

const db = () => cluster().clientConfig;
const url = () => cluster().sqlalchemyUrl;
const nullCount = (table: string) => countRows(db(), table, "schema_sha_v2 IS NULL");

describe.sequential("PROTEA fixture: the T1.6 runbook by hand", () => {
    let canonical = "";

    it("migrates a fresh database to 9d2fb5a07e4c and seeds a mix of pre- and post-parity rows", async () => {
        expectSuccess(observed(`alembic upgrade ${EXPECTED_HEAD}`, await alembic(url(), "upgrade", EXPECTED_HEAD)), "alembic upgrade");
        expect(await alembicCurrent(url())).toBe(EXPECTED_HEAD);

        const seedArgs = ["--datasets", `${DATASETS}`, "--reranker-models", `${RERANKER_MODELS}`];
        seedArgs.push("--embedding-rows", `${EMBEDDING_ROWS}`, "--embedding-dim", "8", "--chunk-rows", "500");
        const seeded = expectSuccess(observed("seed_sample.py", await seedSample(url(), seedArgs)), "seed_sample.py");
        expect(seeded.stdout).toMatch(/dataset_embedding: 2000\/2000 rows \(100\.0%\)/);

        expect(await countRows(db(), "dataset")).toBe(DATASETS);
        expect(await countRows(db(), "reranker_model")).toBe(RERANKER_MODELS);
        expect(await countRows(db(), "reranker_model", "dataset_id IS NULL")).toBe(UNLINKED_MODELS);
        expect(await countRows(db(), "dataset_embedding")).toBe(EMBEDDING_ROWS);
        // Two digests: the legacy one before the parity fix, the canonical one after.
        expect(Number(await queryScalar(db(), "SELECT count(DISTINCT schema_sha) FROM dataset"))).toBe(2);
        const olderThanItsDataset = await countRows(
            db(),
            "reranker_model AS m JOIN dataset AS d ON d.id = m.dataset_id",
            "m.created_at < d.created_at",
        );
        expect(olderThanItsDataset).toBe(0);
    });

    it("renders the T1.6 migration offline (--sql) without a database", async () => {
        const rendered = expectSuccess(
            observed("alembic upgrade --sql", await alembic(undefined, "upgrade", `${EXPECTED_HEAD}:${T16_REVISION}`, "--sql")),
            "alembic upgrade --sql",
        );
        expect(rendered.stdout).toContain("ALTER TABLE dataset ADD COLUMN schema_sha_v2 TEXT;");
        expect(rendered.stdout).toContain("ALTER TABLE reranker_model ADD COLUMN schema_sha_v2 TEXT;");
        expect(rendered.stdout).toContain("CREATE INDEX ix_dataset_schema_sha_v2 ON dataset (schema_sha_v2);");
        expect(rendered.stdout).toContain("CREATE INDEX ix_reranker_model_schema_sha_v2 ON reranker_model (schema_sha_v2);");
    });

    it("upgrades to a3c1d8e2f4b6: both nullable TEXT columns and both indexes land", async () => {
        expectSuccess(observed(`alembic upgrade ${T16_REVISION}`, await alembic(url(), "upgrade", T16_REVISION)), "alembic upgrade");
        expect(await alembicCurrent(url())).toBe(T16_REVISION);

        const columns = await queryRows<{ table_name: string; data_type: string; is_nullable: string }>(
            db(),
            `SELECT table_name, data_type, is_nullable FROM information_schema.columns
             WHERE table_schema = current_schema() AND column_name = 'schema_sha_v2' ORDER BY table_name`,
        );
        expect(columns).toEqual([
            { table_name: "dataset", data_type: "text", is_nullable: "YES" },
            { table_name: "reranker_model", data_type: "text", is_nullable: "YES" },
        ]);
        expect(await indexExists(db(), "ix_dataset_schema_sha_v2")).toBe(true);
        expect(await indexExists(db(), "ix_reranker_model_schema_sha_v2")).toBe(true);

        await installWriteLog(db(), TABLES);
    });

    it("refuses to run without PROTEA_DB_URL, naming the variable", async () => {
        const result = observed("backfill without URL", await backfill(undefined));
        expect(result.exitCode).toBe(2);
        expect(result.stderr).toContain("PROTEA_DB_URL is not set");
    });

    it("backfill --dry-run writes nothing and reports the would-update counts", async () => {
        const result = expectSuccess(observed("backfill --dry-run", await backfill(url(), ["--dry-run"])), "backfill --dry-run");
        const summary = parseBackfillSummary(result.stdout);
        canonical = summary.canonical;
        expect(canonical).toMatch(/^[0-9a-f]{12}$/);
        expect(summary.tables).toEqual({
            dataset: { updated: DATASETS, skipped: 0 },
            reranker_model: { updated: RERANKER_MODELS, skipped: 0 },
        });
        expect(result.stdout).toContain(`dataset: would_update=${DATASETS} skipped=0`);
        expect(result.stdout).toContain(`dataset: would set schema_sha_v2=${canonical} on ${DATASETS} row(s)`);

        expect(await nullCount("dataset")).toBe(DATASETS);
        expect(await nullCount("reranker_model")).toBe(RERANKER_MODELS);
        expect(await countRows(db(), "schema_sha_v2_write_log")).toBe(0);
    });

    it("backfill fills every NULL; models linked to a populated dataset copy its value", async () => {
        await queryRows(db(), "UPDATE dataset SET schema_sha_v2 = $1 WHERE id = 1", [STALE_DIGEST]);
        await clearWriteLog(db());
        const modelsOfDataset1 = await countRows(db(), "reranker_model", "dataset_id = 1");
        expect(modelsOfDataset1).toBeGreaterThan(0);

        const result = expectSuccess(observed("backfill (apply)", await backfill(url(), ["--batch-size", "100"])), "backfill");
        expect(parseBackfillSummary(result.stdout).tables).toEqual({
            dataset: { updated: DATASETS - 1, skipped: 1 },
            reranker_model: { updated: RERANKER_MODELS, skipped: 0, copiedFromDataset: LINKED_MODELS },
        });

        // The runbook's verification: no NULL left in either table.
        expect(await nullCount("dataset")).toBe(0);
        expect(await nullCount("reranker_model")).toBe(0);
        // The copy rule: a linked model carries its dataset's value, an unlinked one the canonical value.
        const offRule = await countRows(
            db(),
            "reranker_model AS m LEFT JOIN dataset AS d ON d.id = m.dataset_id",
            `m.schema_sha_v2 IS DISTINCT FROM COALESCE(d.schema_sha_v2, '${canonical}')`,
        );
        expect(offRule).toBe(0);
        expect(await countRows(db(), "reranker_model", `schema_sha_v2 = '${STALE_DIGEST}'`)).toBe(modelsOfDataset1);
        expect(await countRows(db(), "dataset", `id <> 1 AND schema_sha_v2 <> '${canonical}'`)).toBe(0);

        // The runbook's spot check: post-parity exports match, pre-parity ones do not.
        const parity = await queryRows<{ after_parity: boolean; matches: boolean; rows: string }>(
            db(),
            `SELECT created_at >= '2025-03-01T00:00:00Z' AS after_parity, schema_sha = schema_sha_v2 AS matches, count(*) AS rows
             FROM dataset GROUP BY 1, 2 ORDER BY 1, 2`,
        );
        expect(parity.map(({ after_parity, matches }) => ({ after_parity, matches }))).toEqual([
            { after_parity: false, matches: false },
            { after_parity: true, matches: true },
        ]);

        for (const table of TABLES) expect((await writeLogStats(db(), table)).rowsWrittenTwice).toBe(0);
        expect((await writeLogStats(db(), "dataset")).rowsWritten).toBe(DATASETS - 1);
        expect((await writeLogStats(db(), "reranker_model")).rowsWritten).toBe(RERANKER_MODELS);
    });

    it("a second run without --force skips every row and writes nothing", async () => {
        await clearWriteLog(db());
        const result = expectSuccess(observed("backfill (second run)", await backfill(url(), ["--batch-size", "100"])), "backfill");
        const { tables } = parseBackfillSummary(result.stdout);
        expect(tables.dataset).toEqual({ updated: 0, skipped: DATASETS });
        expect(tables.reranker_model).toMatchObject({ updated: 0, skipped: RERANKER_MODELS });
        expect(await countRows(db(), "schema_sha_v2_write_log")).toBe(0);
    });

    it("an interrupted run commits exactly one batch, and the resumed run finishes without writing a row twice", async () => {
        await queryRows(db(), "UPDATE dataset SET schema_sha_v2 = NULL");
        await queryRows(db(), "UPDATE reranker_model SET schema_sha_v2 = NULL");
        await clearWriteLog(db());
        const batchSize = 2;

        const interrupted = observed(
            "backfill (fault after 1 batch)",
            await backfill(url(), ["--batch-size", `${batchSize}`], { [FAIL_AFTER]: "1" }),
        );
        expect(interrupted.exitCode).toBe(3);
        expect(interrupted.stderr).toContain(`${FAIL_AFTER}=1`);
        const firstBatch = await writeLogStats(db(), "dataset");
        expect(firstBatch).toEqual({ rowsWritten: batchSize, rowsWrittenTwice: 0, transactions: 1 });
        // Stable order: the batch is the lowest ids.
        const writtenIds = await queryRows<{ id: number }>(db(), "SELECT id FROM dataset WHERE schema_sha_v2 IS NOT NULL ORDER BY id");
        expect(writtenIds.map(({ id }) => id)).toEqual([1, 2]);
        expect(await nullCount("dataset")).toBe(DATASETS - batchSize);
        expect(await nullCount("reranker_model")).toBe(RERANKER_MODELS);

        const resumed = expectSuccess(
            observed("backfill (resume)", await backfill(url(), ["--batch-size", `${batchSize}`])),
            "resumed backfill",
        );
        expect(parseBackfillSummary(resumed.stdout).tables).toMatchObject({
            dataset: { updated: DATASETS - batchSize, skipped: batchSize },
            reranker_model: { updated: RERANKER_MODELS, skipped: 0 },
        });
        expect(await nullCount("dataset")).toBe(0);
        expect(await nullCount("reranker_model")).toBe(0);
        // Every row written exactly once over both runs, one transaction per batch.
        expect(await writeLogStats(db(), "dataset")).toEqual({
            rowsWritten: DATASETS,
            rowsWrittenTwice: 0,
            transactions: 1 + Math.ceil((DATASETS - batchSize) / batchSize),
        });
        expect(await writeLogStats(db(), "reranker_model")).toEqual({
            rowsWritten: RERANKER_MODELS,
            rowsWrittenTwice: 0,
            transactions: Math.ceil(RERANKER_MODELS / batchSize),
        });
    });

    it("--force rewrites every row once, in batches", async () => {
        await queryRows(db(), "UPDATE dataset SET schema_sha_v2 = $1 WHERE id = 1", [STALE_DIGEST]);
        await clearWriteLog(db());
        const batchSize = 20;
        const result = expectSuccess(
            observed("backfill --force", await backfill(url(), ["--force", "--batch-size", `${batchSize}`])),
            "backfill --force",
        );
        expect(parseBackfillSummary(result.stdout).tables).toMatchObject({
            dataset: { updated: DATASETS, skipped: 0 },
            reranker_model: { updated: RERANKER_MODELS, skipped: 0 },
        });
        expect(await writeLogStats(db(), "dataset")).toEqual({ rowsWritten: DATASETS, rowsWrittenTwice: 0, transactions: 1 });
        expect(await writeLogStats(db(), "reranker_model")).toEqual({
            rowsWritten: RERANKER_MODELS,
            rowsWrittenTwice: 0,
            transactions: Math.ceil(RERANKER_MODELS / batchSize),
        });
        // The stale digest is repaired everywhere, including the models that copied it.
        for (const table of TABLES) {
            expect(await countRows(db(), table, `schema_sha_v2 IS DISTINCT FROM '${canonical}'`)).toBe(0);
        }
    });

    it("downgrade -1 returns to 9d2fb5a07e4c: indexes and columns gone, data kept", async () => {
        await removeWriteLog(db(), TABLES);
        expectSuccess(observed("alembic downgrade -1", await alembic(url(), "downgrade", "-1")), "alembic downgrade");
        expect(await alembicCurrent(url())).toBe(EXPECTED_HEAD);

        for (const table of TABLES) expect(await columnExists(db(), table, "schema_sha_v2")).toBe(false);
        expect(await indexExists(db(), "ix_dataset_schema_sha_v2")).toBe(false);
        expect(await indexExists(db(), "ix_reranker_model_schema_sha_v2")).toBe(false);
        // Inference falls back to these, so they must survive the rollback.
        expect(await columnExists(db(), "dataset", "schema_sha")).toBe(true);
        expect(await columnExists(db(), "reranker_model", "feature_schema_sha")).toBe(true);
        expect(await countRows(db(), "dataset")).toBe(DATASETS);
        expect(await countRows(db(), "reranker_model")).toBe(RERANKER_MODELS);
        expect(await countRows(db(), "dataset_embedding")).toBe(EMBEDDING_ROWS);
    });

    it("stop() removes the cluster directory and ends the postmaster", async () => {
        const { rootDir, socketDir, dataDir, postmasterPid } = cluster();
        expect(isProcessAlive(postmasterPid)).toBe(true);
        await cluster().stop();
        expect(isProcessAlive(postmasterPid)).toBe(false);
        for (const dir of [rootDir, socketDir, dataDir]) expect(fs.existsSync(dir)).toBe(false);
    });
});
