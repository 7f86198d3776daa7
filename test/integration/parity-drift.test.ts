/**
 * Parity drift caught, not eyeballed: with rollout:parityCutover set, rows
 * produced after the parity fix must have legacy = v2. The fixture's backfill
 * writes a wrong digest into chosen rows on purpose
 * (PROTEA_BACKFILL_DRIFT_IDS); the verification fails naming their ids and
 * keeps a report beside the dumps, the preview shows the same counts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { queryRows, withDb } from "./helpers/db";
import { newTestStack, TestStack } from "./helpers/engine";
import { alembic, EXPECTED_HEAD, expectSuccess, FIXTURE_PYTHON, fixtureStackConfig, PROJECT_ROOT, seedSample } from "./helpers/fixture";
import { filesIn } from "./helpers/snapshots";

process.env.PYTHONDONTWRITEBYTECODE = "1";

const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll });
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-parity-"));
const backupDir = path.join(workDir, "backups");
const CUTOVER = "2025-03-01T00:00:00Z"; // the fixture's parity fix
const stacks: TestStack[] = [];

afterAll(async () => {
    for (const s of stacks.reverse()) await s.remove().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
});

describe("parity drift after the cut-over", () => {
    let drifted: number[];
    let stack: TestStack;

    beforeAll(async () => {
        expectSuccess(await alembic(cluster().sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade to the expected head");
        expectSuccess(await seedSample(cluster().sqlalchemyUrl, ["--datasets", "20", "--reranker-models", "40"]), "seed");
        drifted = (await queryRows<{ id: number }>(cluster().clientConfig, `SELECT id FROM dataset WHERE created_at >= '${CUTOVER}' ORDER BY id LIMIT 2`)).map((r) => r.id);
        expect(drifted).toHaveLength(2);
        stack = await newTestStack(
            PROJECT_ROOT,
            fixtureStackConfig(cluster().sqlalchemyUrl, backupDir, {
                parityCutover: CUTOVER,
                backfill: `PROTEA_BACKFILL_DRIFT_IDS=dataset:${drifted.join(",")} ${FIXTURE_PYTHON} scripts/backfill_schema_sha_v2.py`,
            }),
        );
        stacks.push(stack);
    });

    it("fails the verification, listing the drifted ids, in the output and in a report beside the dump", async () => {
        const failure = await stack.stack.up().then(() => "", (err: Error) => err.message);
        expect(failure).toContain(`verification gate: parity drift after the cut-over (rollout:parityCutover ${CUTOVER})`);
        expect(failure).toMatch(new RegExp(`dataset: \\d+ rows before the cut-over \\(created_at < ${CUTOVER}\\), \\d+ differ as expected; \\d+ after it, 2 differ \\(first ids: ${drifted.join(", ")}\\)`));
        const reports = filesIn(backupDir).filter((f) => /^parity-\d{8}-\d{6}\.json$/.test(f));
        expect(reports).toHaveLength(1);
        expect(fs.statSync(path.join(backupDir, reports[0])).mode & 0o777).toBe(0o600);
        const report = JSON.parse(fs.readFileSync(path.join(backupDir, reports[0]), "utf8"));
        expect(report.cutover).toEqual({ kind: "time", value: CUTOVER });
        const dataset = report.tables.find((t: { table: string }) => t.table === "dataset");
        expect(dataset.after.differ).toBe(2);
        expect(dataset.driftIds).toEqual(drifted.map(String));
        // Rows from before the fix differ by design and do not fail it.
        expect(dataset.before.differ).toBe(dataset.before.rows);
        expect(dataset.before.rows).toBeGreaterThan(0);
    });

    it("the preview shows the same counts, read-only, and warns", async () => {
        const output: string[] = [];
        await stack.stack.preview({ onOutput: (o) => output.push(o) });
        expect(output.join("")).toMatch(new RegExp(`parity DRIFT: the verification would fail: dataset: .* 2 differ \\(first ids: ${drifted.join(", ")}\\)`));
    });

    it("once the drifted rows are corrected, the next up verifies and passes", async () => {
        await withDb(cluster().clientConfig, async (client) => {
            await client.query("UPDATE dataset SET schema_sha_v2 = schema_sha WHERE id = ANY($1)", [drifted]);
            // Models copied the wrong digest from their dataset: the backfill's own rule, so put theirs right too.
            await client.query("UPDATE reranker_model m SET schema_sha_v2 = d.schema_sha_v2 FROM dataset d WHERE m.dataset_id = d.id AND d.id = ANY($1)", [drifted]);
        });
        const up = await stack.stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(filesIn(backupDir).filter((f) => f.startsWith("parity-"))).toHaveLength(2);
    });
});
