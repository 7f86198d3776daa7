/**
 * The lock-aware apply under the real engine: the preview names the sessions
 * in the migration's way; the migration waits for a long reader without
 * queueing writers behind it, and lands once the reader ends. (A failure
 * naming the blocker when the budget is spent: rollout.test.ts.)
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { columnExists } from "./helpers/db";
import { newTestStack, npmRun, TestStack } from "./helpers/engine";
import { alembic, EXPECTED_HEAD, expectSuccess, fixtureStackConfig, PROJECT_ROOT, seedSample } from "./helpers/fixture";

process.env.PYTHONDONTWRITEBYTECODE = "1";

const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll });
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-lock-aware-"));
const stacks: TestStack[] = [];

async function createStack(overrides: Record<string, string>): Promise<TestStack> {
    const s = await newTestStack(PROJECT_ROOT, fixtureStackConfig(cluster().sqlalchemyUrl, path.join(workDir, `backups-${stacks.length}`), overrides));
    stacks.push(s);
    return s;
}

/** A reader that has taken its lock on reranker_model and sits idle in its transaction, as a forgotten psql session does. */
async function longReader(): Promise<{ pid: number; release: () => Promise<void> }> {
    const client = new Client({ ...cluster().clientConfig, application_name: "nightly report" });
    await client.connect();
    await client.query("BEGIN; SELECT count(*) FROM reranker_model");
    const pid = (await client.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
    let released = false;
    return {
        pid,
        release: async () => {
            if (released) return;
            released = true;
            await client.query("ROLLBACK");
            await client.end();
        },
    };
}

beforeAll(async () => {
    expectSuccess(await alembic(cluster().sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade to the expected head");
    expectSuccess(await seedSample(cluster().sqlalchemyUrl), "seed");
});

afterAll(async () => {
    for (const s of stacks.reverse()) await s.remove().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
});

describe("the lock-aware apply", () => {
    it("the preview names a session holding a lock on the migration's tables: pid, user, application, state, age, query", async () => {
        const s = await createStack({});
        const reader = await longReader();
        try {
            const output: string[] = [];
            await s.stack.preview({ onOutput: (o) => output.push(o) });
            const said = output.join("");
            expect(said).toContain(`in the migration's way (has locks on the tables, idle in a transaction, long transaction): pid ${reader.pid} (user ${cluster().user}, application "nightly report", idle in transaction for `);
            expect(said).toContain("holds AccessShareLock on reranker_model): SELECT pg_backend_pid() AS pid");
        } finally {
            await reader.release();
        }
    });

    it("waits for a long reader without trying behind it, and lands once the reader ends", async () => {
        const s = await createStack({ lockTimeout: "1s", lockRetryBudget: "90s" });
        const reader = await longReader();
        // Released once the migration has seen it and is waiting: at its first "not trying yet" line, as the engine streams it.
        let releasing: Promise<void> | undefined;
        const up = await s.stack
            .up({
                onEvent: (event) => {
                    const said = event.diagnosticEvent?.message ?? "";
                    if (!releasing && said.includes(`not trying yet, it would queue writers behind pid ${reader.pid}`)) releasing = reader.release();
                },
            })
            .finally(() => reader.release());
        expect(up.summary.result).toBe("succeeded");
        expect(releasing).toBeDefined();
        expect(await columnExists(cluster().clientConfig, "reranker_model", "schema_sha_v2")).toBe(true);
        const rollback = await npmRun(PROJECT_ROOT, "rollback", ["--stack", s.stack.name, "--yes"], s.env);
        expect(rollback.code, rollback.output).toBe(0);
    });
});
