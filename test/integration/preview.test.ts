/**
 * `pulumi preview` is the runbook's dry run: on the prod-shaped stack (url
 * access), against a real PostgreSQL cluster and the PROTEA fixture, the
 * preview reports the database, the backup's room, the revisions and the
 * gate's verdict, the pending SQL with its lock-safety reading and the
 * backfill, and changes nothing. Probe failures are warnings, never a failed
 * preview.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DryRun } from "../../components/previewReport";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { countRows, queryScalar, withDb } from "./helpers/db";
import { newTestStack, TestStack } from "./helpers/engine";
import { alembic, alembicCurrent, EXPECTED_HEAD, expectSuccess, fixtureStackConfig, PROJECT_ROOT, seedSample, T16_REVISION } from "./helpers/fixture";
import { DatabaseSnapshot, filesIn, snapshotDatabase } from "./helpers/snapshots";

process.env.PYTHONDONTWRITEBYTECODE = "1";

// No autovacuum: then any transaction id handed out during a preview means something wrote.
const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll }, { settings: { autovacuum: "off" } });
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-preview-"));
const backupDir = path.join(workDir, "backups");
const stacks: TestStack[] = [];

async function createStack(overrides: Record<string, string> = {}, dbUrl = cluster().sqlalchemyUrl): Promise<TestStack> {
    const testStack = await newTestStack(PROJECT_ROOT, fixtureStackConfig(dbUrl, backupDir, overrides));
    stacks.push(testStack);
    return testStack;
}

interface PreviewRun {
    dryRun: DryRun;
    /** Diagnostics the program logged on the stack, by severity. */
    logged: { info: string[]; warning: string[] };
    /** Everything the engine printed and every event, for the secret check. */
    transcript: string;
}

/**
 * Runs a preview and reads the `dryRun` stack output from the engine's
 * events (a preview result carries no outputs): the root stack's last
 * resource-outputs event holds what the program exported.
 */
async function preview(testStack: TestStack, fresh = true): Promise<PreviewRun> {
    const events: EngineEvent[] = [];
    const printed: string[] = [];
    const result = await testStack.stack.preview({ onEvent: (e) => events.push(e), onOutput: (o) => printed.push(o) });
    if (fresh) expect(result.changeSummary.create).toBeGreaterThanOrEqual(10);
    // The stack's first outputs event is its registration (no outputs); the last holds what the program exported.
    const stackOutputs = events
        .map((e) => e.resOutputsEvent?.metadata)
        .filter((m) => m?.type === "pulumi:pulumi:Stack")
        .pop()?.new?.outputs;
    const logged = { info: [] as string[], warning: [] as string[] };
    for (const e of events) {
        const d = e.diagnosticEvent;
        if (d && (d.severity === "info" || d.severity === "warning") && d.message.includes("dry run: ")) logged[d.severity].push(d.message);
    }
    const transcript = printed.join("") + JSON.stringify(events);
    expect(stackOutputs?.dryRun, `no dryRun stack output in the preview's events:\n${printed.join("")}`).toBeDefined();
    return { dryRun: stackOutputs!.dryRun as DryRun, logged, transcript };
}

/** The next transaction id: it moves only when a session writes. */
async function nextTransactionId(): Promise<string> {
    return String(await queryScalar(cluster().clientConfig, "SELECT pg_snapshot_xmax(pg_current_snapshot())"));
}

const snapshot = () => snapshotDatabase(cluster().clientConfig, { ...cluster().libpqEnv });

afterAll(async () => {
    for (const s of stacks.reverse()) await s.remove().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
});

describe("pulumi preview is the dry run", () => {
    let datasets: number;
    let models: number;

    beforeAll(async () => {
        const url = cluster().sqlalchemyUrl;
        expectSuccess(await alembic(url, "upgrade", EXPECTED_HEAD), "alembic upgrade to the expected head");
        expectSuccess(await seedSample(url), "seed");
        // As autovacuum would have on a live database: row estimates are current.
        await withDb(cluster().clientConfig, (client) => client.query("ANALYZE dataset; ANALYZE reranker_model"));
        datasets = await countRows(cluster().clientConfig, "dataset");
        models = await countRows(cluster().clientConfig, "reranker_model");
    });

    it("on the prod-shaped stack shows every fact of the runbook's dry run and changes nothing", async () => {
        const main = await createStack();
        const before: DatabaseSnapshot = await snapshot();
        const xid = await nextTransactionId();

        const { dryRun, logged, transcript } = await preview(main);

        // Nothing changed: no transaction id handed out, same schema and rows, no dump, no backup directory.
        expect(await nextTransactionId()).toBe(xid);
        expect(await snapshot()).toEqual(before);
        expect(fs.existsSync(backupDir)).toBe(false);
        expect(filesIn(backupDir)).toEqual([]);
        expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);

        // The database answers, with its size; the backup directory's room against it.
        expect(dryRun.database).toMatchObject({ ok: true, value: { database: cluster().database, port: cluster().port } });
        const size = dryRun.database.ok ? dryRun.database.value.sizeBytes : 0;
        expect(size).toBeGreaterThan(1_000_000);
        expect(dryRun.backupSpace).toMatchObject({ ok: true, value: { backupDir, checkedDir: workDir, expectedDumpBytes: size, enough: true } });
        expect(dryRun.backupSpace.ok && dryRun.backupSpace.value.freeBytes).toBeGreaterThan(size);

        // Revisions and the preflight gate's verdict.
        expect(dryRun.alembicCurrent).toMatchObject({ ok: true, value: [EXPECTED_HEAD] });
        expect(dryRun.alembicHeads).toMatchObject({ ok: true, value: [T16_REVISION] });
        expect(dryRun.preflightGate).toMatchObject({ ok: true, value: { ok: true, alreadyAtTarget: false } });

        // The pending SQL, from alembic's offline mode.
        expect(dryRun.pendingSql?.ok).toBe(true);
        const sql = dryRun.pendingSql?.ok ? dryRun.pendingSql.value.sql : "";
        expect(sql.match(/ALTER TABLE \w+ ADD COLUMN schema_sha_v2 TEXT/g)).toHaveLength(2);
        expect(sql).toContain("CREATE INDEX ix_dataset_schema_sha_v2 ON dataset (schema_sha_v2)");
        expect(sql).toContain("CREATE INDEX ix_reranker_model_schema_sha_v2 ON reranker_model (schema_sha_v2)");

        // The backfill: the columns do not exist yet, so every row would be written.
        expect(dryRun.backfill).toMatchObject({
            ok: true,
            value: { source: "row counts", tables: { dataset: { wouldUpdate: datasets, skipped: 0 }, reranker_model: { wouldUpdate: models, skipped: 0 } } },
        });

        // Lock safety: the two non-concurrent index builds block writes, named with each table's row estimate.
        expect(dryRun.lockSafety?.ok).toBe(true);
        const findings = dryRun.lockSafety?.ok ? dryRun.lockSafety.value.findings : [];
        const indexBuilds = findings.filter((f) => f.severity === "warning" && f.holds === "index build");
        expect(indexBuilds.map((f) => [f.table, f.lock, f.blocks, f.rowEstimate?.rows])).toEqual([
            ["dataset", "SHARE", "writes", datasets],
            ["reranker_model", "SHARE", "writes", models],
        ]);
        expect(dryRun.warnings.some((w) => w.includes(`dataset (~${datasets} rows) blocks writes for the whole index build`))).toBe(true);
        expect(dryRun.warnings.some((w) => w.includes(`reranker_model (~${models} rows) blocks writes for the whole index build`))).toBe(true);

        // The same facts as log lines in the preview.
        expect(logged.info.some((m) => m.includes("the preflight gate would pass"))).toBe(true);
        expect(logged.info.some((m) => m.includes("pending migration SQL") && m.includes("CREATE INDEX ix_dataset_schema_sha_v2"))).toBe(true);
        expect(logged.info.some((m) => m.includes(`backfill would write: dataset ${datasets} rows`))).toBe(true);
        expect(logged.info.some((m) => m.includes("free in"))).toBe(true);
        expect(logged.warning.filter((m) => m.includes("lock safety")).length).toBe(dryRun.warnings.filter((w) => w.startsWith("lock safety")).length);
        expect(logged.warning.length).toBeGreaterThanOrEqual(2);

        expect(transcript).not.toContain(cluster().password);
    });

    it("a database already at the target shows the gate's verdict, the backfill's own --dry-run and every other fact", async () => {
        const url = cluster().sqlalchemyUrl;
        expectSuccess(await alembic(url, "upgrade", T16_REVISION), "alembic upgrade to the target");
        try {
            const atTarget = await createStack();
            const before = await snapshot();
            const xid = await nextTransactionId();
            const { dryRun, logged } = await preview(atTarget);
            expect(await nextTransactionId()).toBe(xid);
            expect(await snapshot()).toEqual(before);

            expect(dryRun.preflightGate).toMatchObject({ ok: true, value: { ok: false, alreadyAtTarget: true } });
            expect(dryRun.warnings.some((w) => w.startsWith("the update would stop here: the database is already at the target revision"))).toBe(true);
            expect(logged.warning.some((m) => m.includes("the update would stop here"))).toBe(true);
            expect(dryRun.database.ok && dryRun.alembicHeads.ok && dryRun.pendingSql?.ok && dryRun.lockSafety?.ok && dryRun.backupSpace.ok).toBe(true);
            expect(dryRun.backfill).toMatchObject({
                ok: true,
                value: { source: "backfill --dry-run", tables: { dataset: { wouldUpdate: datasets, skipped: 0 }, reranker_model: { wouldUpdate: models, skipped: 0 } } },
            });
        } finally {
            expectSuccess(await alembic(url, "downgrade", EXPECTED_HEAD), "alembic downgrade to the expected head");
        }
    });

    it("after this stack's own up, the preview says the migration is applied by this stack, not that the update would stop", async () => {
        const mine = await createStack();
        expect((await mine.stack.up()).summary.result).toBe("succeeded");
        try {
            const { dryRun, logged } = await preview(mine, false);
            expect(dryRun.preflightGate).toMatchObject({ ok: true, value: { ok: false, alreadyAtTarget: true } });
            expect(logged.info.some((m) => m.includes("the migration is applied, by this stack"))).toBe(true);
            expect(dryRun.warnings.filter((w) => w.includes("would stop here"))).toEqual([]);
        } finally {
            await mine.stack.destroy();
        }
        expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
    });

    it("a wrong expectedHead shows the verdict; the probe that cannot run is a warning and hides nothing else", async () => {
        const wrong = await createStack({ expectedHead: "0123456789ab" });
        const { dryRun } = await preview(wrong);
        expect(dryRun.preflightGate).toMatchObject({ ok: true, value: { ok: false } });
        expect(dryRun.warnings).toContain("the update would stop here: alembic current is 9d2fb5a07e4c but rollout:expectedHead is 0123456789ab: stop and reconcile with the deployer");
        // alembic cannot render SQL from an unknown revision: that probe fails, and says why.
        expect(dryRun.pendingSql?.ok).toBe(false);
        expect(dryRun.warnings.some((w) => w.startsWith("pending migration SQL: could not be probed") && w.includes("0123456789ab"))).toBe(true);
        expect(dryRun.database.ok && dryRun.alembicCurrent.ok && dryRun.alembicHeads.ok && dryRun.backfill.ok && dryRun.backupSpace.ok).toBe(true);
    });

    it("an unreachable database is a warning with the reason, and the preview succeeds with the facts that do not need it", async () => {
        const down = await createStack({}, "postgresql+psycopg://protea:unreachable-secret@127.0.0.1:1/protea");
        const { dryRun, logged, transcript } = await preview(down);
        expect(dryRun.database.ok).toBe(false);
        expect(dryRun.warnings.some((w) => w.startsWith("database: could not be probed: the database does not answer at 127.0.0.1:1"))).toBe(true);
        expect(logged.warning.some((m) => m.includes("the database does not answer at 127.0.0.1:1"))).toBe(true);
        expect(dryRun.alembicCurrent.ok).toBe(false);
        expect(dryRun.backfill.ok).toBe(false);
        // What needs no database is still there: the checkout's head, the SQL and its reading (without row estimates), the disk.
        expect(dryRun.alembicHeads).toMatchObject({ ok: true, value: [T16_REVISION] });
        expect(dryRun.pendingSql?.ok).toBe(true);
        expect(dryRun.lockSafety?.ok && dryRun.lockSafety.value.findings.filter((f: { severity: string }) => f.severity === "warning").length).toBeGreaterThanOrEqual(2);
        expect(dryRun.backupSpace.ok).toBe(true);
        expect(transcript).not.toContain("unreachable-secret");
        // A prod stack's database is not a drill's clone that this run would create.
        expect(transcript).toContain("database: does not answer (see the dry run's database line)");
        expect(transcript).not.toContain("a drill's clone is created by this run");
    });
});
