/**
 * The rollout's safety when the order changes, under the real engine against
 * a real cluster and the PROTEA fixture (3 of 3, each on its own cluster so
 * the three run side by side): failures after the writers were paused, and
 * an up killed part-way, then `npm run recover`.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countRows } from "./helpers/db";
import type { TestStack } from "./helpers/engine";
import { FIXTURE_PYTHON, PROJECT_ROOT } from "./helpers/fixture";
import { failureOf, useSafetyDatabase } from "./helpers/safetyDatabase";
import { filesIn } from "./helpers/snapshots";

const { cluster, npmRun, migrationPresent, snapshot, createStack, rollBack } = useSafetyDatabase({ beforeAll, afterAll });

describe("failures after the writers were paused", () => {
    it("a migration that fails resumes them (a fresh marker of this run) and says so; resumeOnFailure=false says how to resume", async () => {
        // The session in the way holds its lock past the try's timeout: the apply waits for it only as long as its budget, here 2 s (the default 2 min made this test wait 4 minutes for the same result).
        const s = await createStack({ lockTimeout: "1s", lockRetries: "0", lockRetryBudget: "2s" });
        const holder = new Client(cluster().clientConfig);
        await holder.connect();
        const started = Date.now();
        try {
            await holder.query("BEGIN; LOCK TABLE dataset IN ACCESS SHARE MODE");
            const failure = await failureOf(s.stack.up());
            expect(failure).toContain("could not get its locks");
            expect(failure).toContain("the writers were resumed (rollout:resumeWriters ran");
            expect(fs.statSync(s.markers.resumed).mtimeMs).toBeGreaterThanOrEqual(started - 1000);

            const kept = await createStack({ lockTimeout: "1s", lockRetries: "0", lockRetryBudget: "2s", resumeOnFailure: "false" });
            const keptFailure = await failureOf(kept.stack.up());
            expect(keptFailure).toContain("WRITERS ARE STILL PAUSED");
            expect(keptFailure).toContain(`touch ${kept.markers.resumed}`);
            expect(fs.existsSync(kept.markers.resumed)).toBe(false);
        } finally {
            await holder.query("ROLLBACK");
            await holder.end();
        }
        expect(await migrationPresent()).toBe(false);
    });

    it("a backfill that fails resumes them and says so; the next up pauses again and finishes", async () => {
        const s = await createStack({ batchSize: "10", backfill: `PROTEA_BACKFILL_FAIL_AFTER_BATCHES=2 ${FIXTURE_PYTHON} scripts/backfill_schema_sha_v2.py` });
        const started = Date.now();
        const failure = await failureOf(s.stack.up());
        expect(failure).toMatch(/backfill apply failed \(exit 3\); committed batches stay/);
        expect(failure).toContain("the writers were resumed");
        expect(fs.statSync(s.markers.resumed).mtimeMs).toBeGreaterThanOrEqual(started - 1000);
        expect(await countRows(cluster().clientConfig, "dataset", "schema_sha_v2 IS NOT NULL")).toBe(20);

        fs.rmSync(s.markers.paused);
        await s.stack.setConfig("rollout:backfill", { value: `${FIXTURE_PYTHON} scripts/backfill_schema_sha_v2.py` });
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        expect(fs.existsSync(s.markers.paused)).toBe(true);
        expect(await countRows(cluster().clientConfig, "dataset", "schema_sha_v2 IS NULL")).toBe(0);
        expect(await countRows(cluster().clientConfig, "reranker_model", "schema_sha_v2 IS NULL")).toBe(0);
        await rollBack(s);
    });
});

/**
 * Starts `pulumi up` with the CLI, as an operator does, and SIGKILLs the CLI
 * alone once `moment` (SQL returning a row) holds: its language host,
 * program and provider are left behind, as after a lost terminal.
 */
async function killUpWhen(s: TestStack, moment: string, meanwhile: (watcher: Client) => Promise<void> = async () => undefined): Promise<void> {
    const cli = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", s.stack.name], { cwd: PROJECT_ROOT, env: { ...process.env, ...s.env }, stdio: "ignore" });
    const watcher = new Client(cluster().clientConfig);
    await watcher.connect();
    try {
        for (let i = 0; i < 6000; i++) {
            await meanwhile(watcher);
            if ((await watcher.query(moment)).rowCount) {
                cli.kill("SIGKILL");
                return;
            }
            if (cli.exitCode !== null) throw new Error(`pulumi up ended (exit ${cli.exitCode}) before the moment came: ${moment}`);
            await new Promise((r) => setTimeout(r, 20));
        }
        throw new Error(`the moment never came: ${moment}`);
    } finally {
        await watcher.end();
    }
}

const orphansOf = async (stackName: string) => {
    const { findOrphanedEngineProcesses } = await import("../../lib/runbook/interruptedRun/orphanedProcesses");
    return findOrphanedEngineProcesses(PROJECT_ROOT).filter((p) => p.stack === null || p.stack === stackName);
};

describe("an up killed part-way, then `npm run recover`", () => {
    const others = "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND ";
    const cases = [
        { when: "during pg_dump", paused: false, moment: `${others} application_name = 'pg_dump' AND state = 'active'` },
        { when: "during alembic upgrade", paused: true, moment: `${others} wait_event_type = 'Lock' AND query ILIKE 'ALTER TABLE%'`, block: "LOCK TABLE dataset IN ACCESS SHARE MODE" },
        {
            when: "mid-backfill",
            paused: true,
            moment: `${others} wait_event_type = 'Lock' AND query ILIKE '%UPDATE reranker_model%'`,
            // Once the migration has committed, one row the backfill will reach is held, so it stops there.
            blockOnceColumnsExist: "SELECT 1 FROM reranker_model WHERE id = (SELECT max(id) FROM reranker_model) FOR UPDATE",
        },
    ] as { when: string; paused: boolean; moment: string; block?: string; blockOnceColumnsExist?: string }[];
    for (const c of cases) {
        it(`${c.when}: recover ends the orphans, clears the lock, and the next up converges with nothing lost`, async () => {
            const s = await createStack({ lockTimeout: "60s", batchSize: "50" });
            const bulkBefore = (await snapshot()).rowChecksums.bulk;
            const rows = { dataset: await countRows(cluster().clientConfig, "dataset"), models: await countRows(cluster().clientConfig, "reranker_model") };
            const blocker = new Client(cluster().clientConfig);
            await blocker.connect();
            try {
                if (c.block) await blocker.query(`BEGIN; ${c.block}`);
                let blocking = false;
                await killUpWhen(s, c.moment, async (watcher) => {
                    if (!c.blockOnceColumnsExist || blocking) return;
                    const migrated = await watcher.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'reranker_model' AND column_name = 'schema_sha_v2'");
                    if (migrated.rowCount) {
                        await blocker.query(`BEGIN; ${c.blockOnceColumnsExist}`);
                        blocking = true;
                    }
                });
            } finally {
                await blocker.query("ROLLBACK").catch(() => undefined);
                await blocker.end();
            }
            const blocked = await failureOf(s.stack.up());
            expect(blocked).toMatch(/currently locked|locked by/);

            const recover = await npmRun("recover", ["--stack", s.stack.name], s.env);
            expect(recover.code, recover.output).toBe(0);
            expect(recover.output).toContain("cleared the stale lock");
            // The state says whether the run paused the writers (a pause with no resume of the same run), not a marker.
            expect(fs.existsSync(s.markers.paused)).toBe(c.paused);
            if (c.paused) {
                // Through the project's tool, which scrubs and bounds the operator's command.
                expect(recover.output).toContain(`resuming the writers the interrupted run paused and did not resume: touch ${s.markers.resumed}`);
                expect(recover.output).not.toContain("resuming the writers FAILED");
                expect(fs.existsSync(s.markers.resumed)).toBe(true);
            } else {
                expect(recover.output).not.toContain("resuming the writers");
                expect(fs.existsSync(s.markers.resumed)).toBe(false);
            }
            expect(await orphansOf(s.stack.name)).toEqual([]);
            expect(filesIn(s.backupDir).filter((f) => f.endsWith(".partial"))).toEqual([]);

            const up = await s.stack.up();
            expect(up.summary.result).toBe("succeeded");
            expect(await countRows(cluster().clientConfig, "dataset", "schema_sha_v2 IS NULL")).toBe(0);
            expect(await countRows(cluster().clientConfig, "reranker_model", "schema_sha_v2 IS NULL")).toBe(0);
            expect(await countRows(cluster().clientConfig, "dataset")).toBe(rows.dataset);
            expect(await countRows(cluster().clientConfig, "reranker_model")).toBe(rows.models);
            expect((await snapshot()).rowChecksums.bulk).toBe(bulkBefore);
            await rollBack(s);
        });
    }
});
