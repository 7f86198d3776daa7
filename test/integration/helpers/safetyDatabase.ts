/**
 * What the safety files (test/integration/safety-*.test.ts) share: a cluster
 * of their own holding the PROTEA fixture at the expected head, seeded, with a
 * table big enough that a restore can be caught half-way; stacks with their
 * own backup folder and writer markers; and the checks they make of the
 * database. Each file calls `useSafetyDatabase` once, so the files can run
 * side by side without sharing a database.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { expect } from "vitest";
import { columnExists } from "./db";
import { newTestStack, npmRun as runNpmScript, TestStack } from "./engine";
import { alembic, EXPECTED_HEAD, expectSuccess, fixtureStackConfig, PROJECT_ROOT, seedSample } from "./fixture";
import { filesIn, snapshotDatabase } from "./snapshots";
import { SuiteHooks, useTemporaryPostgresCluster } from "./temporaryCluster";

export type SafetyStack = TestStack & { backupDir: string; markers: { paused: string; resumed: string } };

export function useSafetyDatabase(hooks: SuiteHooks) {
    process.env.PYTHONDONTWRITEBYTECODE = "1";
    const cluster = useTemporaryPostgresCluster(hooks);
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-safety-"));
    const stacks: TestStack[] = [];
    let counter = 0;

    hooks.beforeAll(async () => {
        const url = cluster().sqlalchemyUrl;
        expectSuccess(await alembic(url, "upgrade", EXPECTED_HEAD), "alembic upgrade to the expected head");
        expectSuccess(await seedSample(url, ["--datasets", "40", "--reranker-models", "300"]), "seed");
        // A table big enough that a restore can be caught half-way.
        const client = new Client(cluster().clientConfig);
        await client.connect();
        await client.query("CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 400000) g");
        await client.end();
    }, 180_000);
    hooks.afterAll(async () => {
        for (const s of stacks.reverse()) await s.remove().catch(() => undefined);
        fs.rmSync(workDir, { recursive: true, force: true });
    }, 180_000);

    const npmRun = (script: string, args: string[], env: Record<string, string>, cwd = PROJECT_ROOT) => runNpmScript(cwd, script, args, env);
    const migrationPresent = () => columnExists(cluster().clientConfig, "dataset", "schema_sha_v2");

    return {
        cluster,
        workDir,
        npmRun,
        migrationPresent,
        snapshot: () => snapshotDatabase(cluster().clientConfig, { ...cluster().libpqEnv }),

        /** A stack of its own, with its own backup folder and writer markers. */
        async createStack(overrides: Record<string, string> = {}, projectDir = PROJECT_ROOT): Promise<SafetyStack> {
            const dir = path.join(workDir, `s${++counter}`);
            fs.mkdirSync(dir);
            const backupDir = path.join(dir, "backups");
            const markers = { paused: path.join(dir, "paused"), resumed: path.join(dir, "resumed") };
            const config = fixtureStackConfig(cluster().sqlalchemyUrl, backupDir, {
                pauseWriters: `touch ${markers.paused}`,
                resumeWriters: `touch ${markers.resumed}`,
                ...overrides,
            });
            const testStack = await newTestStack(projectDir, config);
            stacks.push(testStack);
            return { ...testStack, backupDir, markers };
        },

        /** `npm run rollback --yes`, which must succeed and take the migration away. */
        async rollBack(s: TestStack, cwd = PROJECT_ROOT) {
            const rollback = await npmRun("rollback", ["--stack", s.stack.name, "--yes"], s.env, cwd);
            expect(rollback.code, rollback.output).toBe(0);
            expect(await migrationPresent()).toBe(false);
        },
    };
}

export const dumpsIn = (dir: string) => filesIn(dir).filter((f) => f.endsWith(".dump"));
export const failureOf = (p: Promise<unknown>) => p.then(() => "", (err: Error) => err.message);
