/**
 * Rehearsal budgets under the real engine: a rehearsal that differs from
 * production is warned in preview; a step past its budget stops cleanly
 * (no partial DDL, committed backfill batches only); after a good up the
 * side-by-side table lies beside the dumps.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { columnExists, countRows, queryScalar } from "./helpers/db";
import { newTestStack, npmRun, TestStack } from "./helpers/engine";
import { alembic, alembicCurrent, EXPECTED_HEAD, expectSuccess, fixtureStackConfig, PROJECT_ROOT, seedSample, T16_REVISION } from "./helpers/fixture";
import { filesIn } from "./helpers/snapshots";

process.env.PYTHONDONTWRITEBYTECODE = "1";

const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll });
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-rehearsal-"));
const stacks: TestStack[] = [];
const failureOf = (p: Promise<unknown>) => p.then(() => "", (err: Error) => err.message);

/** A drill report's rehearsal facts, as `npm run drill` writes them; `overrides` change what the test needs. */
function writeRehearsal(name: string, overrides: Record<string, unknown>): string {
    const file = path.join(workDir, `${name}.json`);
    const rehearsal = {
        at: "2026-11-26T12:00:00.000Z",
        source: "drill of a test dump",
        databaseBytes: 8_000_000,
        rows: { dataset: 2, reranker_model: 51 },
        expectedHead: EXPECTED_HEAD,
        targetRevision: T16_REVISION,
        stepMillis: { backup: 150, upgrade: 900, backfillDryRun: 600, backfillApply: 600 },
        ...overrides,
    };
    fs.writeFileSync(file, JSON.stringify({ stack: "drill", rehearsal }));
    return file;
}

async function createStack(overrides: Record<string, string>): Promise<TestStack & { backupDir: string }> {
    const backupDir = path.join(workDir, `backups-${stacks.length}`);
    const s = await newTestStack(PROJECT_ROOT, fixtureStackConfig(cluster().sqlalchemyUrl, backupDir, overrides));
    stacks.push(s);
    return { ...s, backupDir };
}

const databaseBytes = async () => Number(await queryScalar(cluster().clientConfig, "SELECT pg_database_size(current_database())"));

beforeAll(async () => {
    expectSuccess(await alembic(cluster().sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade to the expected head");
    expectSuccess(await seedSample(cluster().sqlalchemyUrl, ["--datasets", "20", "--reranker-models", "200"]), "seed");
});

afterAll(async () => {
    for (const s of stacks.reverse()) await s.remove().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
});

describe("rehearsal budgets", () => {
    it("the preview warns when production differs from the rehearsal in kind or size, and projects each step", async () => {
        const rehearsal = writeRehearsal("other", { databaseBytes: 100_000, pendingSqlSha256: "0".repeat(64), targetRevision: "b00000000000" });
        const s = await createStack({ rehearsal });
        const output: string[] = [];
        await s.stack.preview({ onOutput: (o) => output.push(o) });
        const said = output.join("");
        expect(said).toContain(`warning: dry run: rehearsal: the rehearsal migrated ${EXPECTED_HEAD} → b00000000000, production would migrate ${EXPECTED_HEAD} → ${T16_REVISION}`);
        expect(said).toContain("warning: dry run: rehearsal: the pending SQL differs from the rehearsal's (sha256 ");
        expect(said).toMatch(/warning: dry run: rehearsal: production's database is \d+\.\d× the rehearsal's .* beyond rollout:rehearsalSizeFactor 4/);
        expect(said).toContain("warning: dry run: rehearsal: dataset has 20 rows, 10.0× the rehearsal's 2, beyond rollout:rehearsalSizeFactor 4");
        // reranker_model: 200 rows against 51, within the factor.
        expect(said).not.toContain("reranker_model has 200 rows");
        expect(said).toMatch(/dry run: rehearsal: alembic upgrade: 0\.9 s rehearsed, about \d+ s here; budget \d+ s/);
    });

    it("a rehearsal file that cannot be read stops preview and up before anything acts, naming the key", async () => {
        const s = await createStack({ rehearsal: path.join(workDir, "missing.json") });
        const failure = await failureOf(s.stack.up());
        expect(failure).toContain(`rollout:rehearsal ${path.join(workDir, "missing.json")} cannot be read as a drill report`);
        expect(filesIn(s.backupDir)).toEqual([]);
    });

    it("a migration past its budget stops before it commits: no partial DDL", async () => {
        const rehearsal = writeRehearsal("tight-upgrade", { databaseBytes: await databaseBytes(), stepMillis: { upgrade: 1 } });
        // A long lock_timeout: the try waits on the holder's lock until the budget stops it.
        const s = await createStack({ rehearsal, budgetMultiple: "1", budgetFloor: "2s", lockTimeout: "60s" });
        const holder = new Client(cluster().clientConfig);
        await holder.connect();
        try {
            await holder.query("BEGIN; LOCK TABLE reranker_model IN ACCESS SHARE MODE");
            const failure = await failureOf(s.stack.up());
            expect(failure).toContain("stopped past its rehearsal budget of 2.0 s (1 × 0.0 s in the rehearsal × 1.");
            expect(failure).toContain("rollout:budgetMultiple, rollout:budgetFloor");
        } finally {
            await holder.query("ROLLBACK");
            await holder.end();
        }
        expect(await columnExists(cluster().clientConfig, "dataset", "schema_sha_v2")).toBe(false);
        expect(await columnExists(cluster().clientConfig, "reranker_model", "schema_sha_v2")).toBe(false);
        expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
    });

    it("a backfill past its budget stops with its committed batches only; a later up finishes it", async () => {
        const rehearsal = writeRehearsal("tight-backfill", { databaseBytes: await databaseBytes(), stepMillis: { backfillApply: 1 } });
        const s = await createStack({ rehearsal, budgetMultiple: "1", budgetFloor: "2s", batchSize: "10" });
        const holder = new Client(cluster().clientConfig);
        await holder.connect();
        let failure: string;
        try {
            // Once the columns exist, one reranker_model row mid-table is held: the backfill's batch that reaches it waits there.
            const up = failureOf(s.stack.up());
            for (let i = 0; i < 600 && !(await columnExists(cluster().clientConfig, "reranker_model", "schema_sha_v2")); i++) await new Promise((r) => setTimeout(r, 100));
            await holder.query("BEGIN; SELECT 1 FROM reranker_model WHERE id = (SELECT min(id) + 95 FROM reranker_model) FOR UPDATE");
            failure = await up;
        } finally {
            await holder.query("ROLLBACK");
            await holder.end();
        }
        expect(failure).toContain("backfill apply failed (stopped past its rehearsal budget of 2.0 s");
        expect(failure).toContain("committed batches stay");
        // Every dataset in the first batches; reranker_model only in whole committed batches of 10, before the held row.
        expect(await countRows(cluster().clientConfig, "dataset", "schema_sha_v2 IS NULL")).toBe(0);
        const written = await countRows(cluster().clientConfig, "reranker_model", "schema_sha_v2 IS NOT NULL");
        expect(written % 10).toBe(0);
        expect(written).toBeLessThan(200);

        await s.stack.setConfig("rollout:budgetFloor", { value: "10min" });
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        expect(await countRows(cluster().clientConfig, "reranker_model", "schema_sha_v2 IS NULL")).toBe(0);
        const rollback = await npmRun(PROJECT_ROOT, "rollback", ["--stack", s.stack.name, "--yes"], s.env);
        expect(rollback.code, rollback.output).toBe(0);
    });

    it("after up, rehearsal and production side by side beside the dump", async () => {
        const rehearsal = writeRehearsal("good", { databaseBytes: await databaseBytes() });
        const s = await createStack({ rehearsal });
        const up = await s.stack.up();
        expect(up.summary.result).toBe("succeeded");
        const report = up.outputs.rehearsalReport.value as string;
        expect(path.dirname(report)).toBe(s.backupDir);
        expect(path.basename(report)).toMatch(/^pre-t16-vs-rehearsal-\d{8}-\d{6}\.md$/);
        const table = fs.readFileSync(report, "utf8");
        expect(table).toContain("| step | rehearsal | production | budget | within |");
        expect(table).toMatch(/\| alembic upgrade \| 0\.9 s \| \d+\.\d s \| 60 s \| yes \|/);
        expect(table).toMatch(/\| backfill apply \| 0\.6 s \| \d+\.\d s \| 60 s \| yes \|/);
        expect(JSON.parse(fs.readFileSync(report.replace(/\.md$/, ".json"), "utf8")).production.stepMillis.upgrade).toBe(up.outputs.stepMillis.value.upgrade);
        const rollback = await npmRun(PROJECT_ROOT, "rollback", ["--stack", s.stack.name, "--yes"], s.env);
        expect(rollback.code, rollback.output).toBe(0);
    });
});
