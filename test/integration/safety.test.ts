/**
 * The rollout's safety when the order changes, under the real engine against
 * a real cluster and the PROTEA fixture: re-applies after a rollback, a
 * rollback from another checkout, damaged and interrupted restores, two
 * stacks on one database, an out-of-band downgrade, failures after the
 * writers were paused, and a bad backup folder.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { columnExists, countRows } from "./helpers/db";
import { newTestStack, npmRun as runNpmScript, TestStack } from "./helpers/engine";
import { alembic, alembicCurrent, EXPECTED_HEAD, expectSuccess, FIXTURE_PYTHON, fixtureStackConfig, PROJECT_ROOT, seedSample } from "./helpers/fixture";
import { filesIn, snapshotDatabase } from "./helpers/snapshots";

process.env.PYTHONDONTWRITEBYTECODE = "1";

const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll });
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-safety-"));
const stacks: TestStack[] = [];
const snapshot = () => snapshotDatabase(cluster().clientConfig, { ...cluster().libpqEnv });
const dumpsIn = (dir: string) => filesIn(dir).filter((f) => f.endsWith(".dump"));
const failureOf = (p: Promise<unknown>) => p.then(() => "", (err: Error) => err.message);
const npmRun = (script: string, args: string[], env: Record<string, string>, cwd = PROJECT_ROOT) => runNpmScript(cwd, script, args, env);

let counter = 0;
/** A stack of its own, with its own backup folder and writer markers. */
async function createStack(overrides: Record<string, string> = {}, projectDir = PROJECT_ROOT) {
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
}

const migrationPresent = () => columnExists(cluster().clientConfig, "dataset", "schema_sha_v2");

async function rollBack(s: TestStack, cwd = PROJECT_ROOT) {
    const rollback = await npmRun("rollback", ["--stack", s.stack.name, "--yes"], s.env, cwd);
    expect(rollback.code, rollback.output).toBe(0);
    expect(await migrationPresent()).toBe(false);
}

afterAll(async () => {
    for (const s of stacks.reverse()) await s.remove().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
});

beforeAll(async () => {
    const url = cluster().sqlalchemyUrl;
    expectSuccess(await alembic(url, "upgrade", EXPECTED_HEAD), "alembic upgrade to the expected head");
    expectSuccess(await seedSample(url, ["--datasets", "40", "--reranker-models", "300"]), "seed");
    // A table big enough that a restore can be caught half-way.
    const client = new Client(cluster().clientConfig);
    await client.connect();
    await client.query("CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 400000) g");
    await client.end();
});

describe("a re-apply after a rollback", () => {
    it("with a wrong expectedHead fails at the gate: no DDL, no dump, schema and rows unchanged; with the right one it takes a fresh dump", async () => {
        const s = await createStack();
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        await rollBack(s);
        const before = await snapshot();
        const dumps = dumpsIn(s.backupDir);

        await s.stack.setConfig("rollout:expectedHead", { value: "000000000000" });
        const failure = await failureOf(s.stack.up());
        expect(failure).toContain(`alembic current is ${EXPECTED_HEAD} but rollout:expectedHead is 000000000000`);
        expect(await snapshot()).toEqual(before);
        expect(dumpsIn(s.backupDir)).toEqual(dumps);

        await s.stack.setConfig("rollout:expectedHead", { value: EXPECTED_HEAD });
        const up = await s.stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(dumpsIn(s.backupDir)).toHaveLength(dumps.length + 1);
        await rollBack(s);
    });
});

describe("the prod default, protect: true", () => {
    it("the rollback asks (and without a terminal refuses), --preview changes nothing, then rollback, re-apply and restore all work", async () => {
        const s = await createStack({ protect: "true" });
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        const unconfirmed = await npmRun("rollback", ["--stack", s.stack.name], s.env);
        expect(unconfirmed.code).not.toBe(0);
        expect(unconfirmed.output).toContain("not confirmed; nothing changed");
        const preview = await npmRun("rollback", ["--stack", s.stack.name, "--preview"], s.env);
        expect(preview.code, preview.output).toBe(0);
        expect(preview.output).toMatch(/- +command:local:Command +migration-upgrade +delete/);
        expect(await migrationPresent()).toBe(true);

        await rollBack(s);
        const types = (await s.stack.exportStack()).deployment.resources.map((r: { type: string }) => r.type);
        expect(types).toContain("protea:rollout:Backup");
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        const restore = await npmRun("restore", ["--stack", s.stack.name, "--confirm", cluster().database], s.env);
        expect(restore.code, restore.output).toBe(0);
        expect(await migrationPresent()).toBe(false);
        // A re-apply after the restore: gate, fresh dump, migration.
        const dumps = dumpsIn(s.backupDir).length;
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        expect(dumpsIn(s.backupDir)).toHaveLength(dumps + 1);
        await rollBack(s);
        // The backup stays protected: a full destroy refuses it.
        expect(await failureOf(s.stack.destroy())).toMatch(/protected/);
    });
});

describe("a rollback from another checkout", () => {
    it("works after the checkout that applied is deleted, and an up from another checkout changes nothing", async () => {
        // Checkout A: a copy of the project, with relative paths as an operator's clone has them.
        const checkoutA = fs.mkdtempSync(path.join(workDir, "checkout-a-"));
        for (const entry of ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts", "components", "lib", "bin", "test/fixtures"]) {
            fs.cpSync(path.join(PROJECT_ROOT, entry), path.join(checkoutA, entry), { recursive: true });
        }
        fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(checkoutA, "node_modules"));
        fs.mkdirSync(path.join(checkoutA, ".state"));
        fs.symlinkSync(path.join(PROJECT_ROOT, ".state/venv"), path.join(checkoutA, ".state/venv"));
        fs.symlinkSync(fs.realpathSync(path.join(PROJECT_ROOT, ".state/tools")), path.join(checkoutA, ".state/tools"));
        const s = await createStack({ appDir: "test/fixtures/protea", alembic: "../../../.state/venv/bin/python -m alembic", backfill: "../../../.state/venv/bin/python scripts/backfill_schema_sha_v2.py" }, checkoutA);
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        const state = JSON.stringify((await s.stack.exportStack()).deployment);
        expect(state).not.toContain(checkoutA);
        expect(state).not.toContain(process.execPath);

        // The stack's config file comes with every clone (it is tracked); the backend and passphrase are shared.
        const configFile = `Pulumi.${s.stack.name}.yaml`;
        fs.copyFileSync(path.join(checkoutA, configFile), path.join(PROJECT_ROOT, configFile));
        fs.rmSync(checkoutA, { recursive: true, force: true });

        const fromB = await newTestStackView(s);
        const preview = await fromB.preview();
        expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
        await rollBack(s);
        expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
        const types = (await fromB.exportStack()).deployment.resources.map((r: { type: string }) => r.type);
        expect(types).not.toContain("protea:rollout:Migration");
    });
});

/** The same stack, opened from this checkout. */
async function newTestStackView(s: TestStack) {
    const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
    return LocalWorkspace.selectStack({ stackName: s.stack.name, workDir: PROJECT_ROOT }, { envVars: s.env });
}

describe("the restore", () => {
    let s: Awaited<ReturnType<typeof createStack>>;
    let dump: string;

    beforeAll(async () => {
        s = await createStack();
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        dump = (await s.stack.outputs()).backupPath.value;
    });

    for (const damage of ["truncated", "byte-flipped"] as const) {
        it(`refuses a ${damage} dump before anything changes`, async () => {
            const good = fs.readFileSync(dump);
            const bad = Buffer.from(good);
            const damaged = damage === "truncated" ? bad.subarray(0, Math.floor(bad.length * 0.8)) : (bad[Math.floor(bad.length / 2)] ^= 0xff, bad);
            fs.writeFileSync(dump, damaged);
            try {
                const before = await snapshot();
                const restore = await npmRun("restore", ["--stack", s.stack.name, "--confirm", cluster().database], s.env);
                expect(restore.code).not.toBe(0);
                expect(restore.output).toContain("is damaged or was changed since it was taken");
                expect(restore.output).toContain("nothing changed");
                expect(await snapshot()).toEqual(before);
            } finally {
                fs.writeFileSync(dump, good);
            }
        });
    }

    it("killed half-way leaves the database exactly as it was", async () => {
        const before = await snapshot();
        const child = spawn("npm", ["run", "--silent", "restore", "--", "--stack", s.stack.name, "--confirm", cluster().database], {
            cwd: PROJECT_ROOT,
            env: { ...process.env, ...s.env },
            detached: true,
            stdio: "ignore",
        });
        const watcher = new Client(cluster().clientConfig);
        await watcher.connect();
        let caught = false;
        for (let i = 0; i < 3000 && !caught; i++) {
            const copying = await watcher.query("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY public.bulk%' AND pid <> pg_backend_pid()");
            if (copying.rowCount) {
                process.kill(-child.pid!, "SIGKILL");
                caught = true;
            } else await new Promise((r) => setTimeout(r, 10));
        }
        await watcher.end();
        expect(caught).toBe(true);
        await new Promise((r) => setTimeout(r, 1000));
        expect(await snapshot()).toEqual(before);
        expect(await migrationPresent()).toBe(true);
    });

    it("restores the recorded dump and puts schema public's owner and privileges back", async () => {
        const client = new Client(cluster().clientConfig);
        await client.connect();
        const acl = "SELECT nspowner::regrole::text AS owner, nspacl::text AS acl FROM pg_namespace WHERE nspname = 'public'";
        const schemaBefore = (await client.query(acl)).rows[0];
        await client.end();
        const restore = await npmRun("restore", ["--stack", s.stack.name, "--confirm", cluster().database], s.env);
        expect(restore.code, restore.output).toBe(0);
        expect(await migrationPresent()).toBe(false);
        const after = new Client(cluster().clientConfig);
        await after.connect();
        expect((await after.query(acl)).rows[0]).toEqual(schemaBefore);
        await after.end();
    });
});

describe("two stacks on one database", () => {
    it("started together: exactly one migrates and backfills, the other fails naming the holder and changes nothing", async () => {
        const [a, b] = [await createStack(), await createStack()];
        const results = await Promise.allSettled([a.stack.up(), b.stack.up()]);
        const ok = results.filter((r) => r.status === "fulfilled");
        const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
        expect(ok).toHaveLength(1);
        expect(failed).toHaveLength(1);
        expect(failed[0].reason.message).toMatch(/another rollout holds this database: pid \d+, user \S+, application "protea-rollout rollout\/test-[0-9a-f]+ up"/);
        const loser = results[0].status === "rejected" ? a : b;
        const winner = loser === a ? b : a;
        expect(dumpsIn(loser.backupDir)).toEqual([]);
        expect(fs.existsSync(loser.markers.paused)).toBe(false);
        const loserTypes = ((await loser.stack.exportStack()).deployment.resources ?? []).map((r: { type: string }) => r.type);
        expect(loserTypes).not.toContain("command:local:Command");
        await rollBack(winner);
    });
});

describe("a rollout lock held by another stack", () => {
    it("the preview warns, naming the holder; the up stops before changing anything", async () => {
        const holder = new Client({ ...cluster().clientConfig, application_name: "protea-rollout rollout/elsewhere up" });
        await holder.connect();
        try {
            await holder.query("SELECT pg_advisory_lock(x'50524f54'::int, 1)");
            const s = await createStack();
            const warnings: string[] = [];
            await s.stack.preview({ onEvent: (e) => e.diagnosticEvent?.severity === "warning" && warnings.push(e.diagnosticEvent.message) });
            expect(warnings.some((w) => w.includes('another rollout holds this database: pid') && w.includes('"protea-rollout rollout/elsewhere up"'))).toBe(true);
            const before = await snapshot();
            expect(await failureOf(s.stack.up())).toContain('application "protea-rollout rollout/elsewhere up"');
            expect(await snapshot()).toEqual(before);
            expect(dumpsIn(s.backupDir)).toEqual([]);
        } finally {
            await holder.end();
        }
    });
});

describe("drift", () => {
    it("an out-of-band downgrade stops the next up before any DDL, naming what differs and the way back", async () => {
        const s = await createStack();
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        expectSuccess(await alembic(cluster().sqlalchemyUrl, "downgrade", EXPECTED_HEAD), "out-of-band downgrade");
        const before = await snapshot();
        const failure = await failureOf(s.stack.up());
        expect(failure).toContain("drift: this stack's state holds the migration to a3c1d8e2f4b6, but the database does not");
        expect(failure).toContain(`npm run recover -- --stack ${s.stack.name}`);
        expect(await migrationPresent()).toBe(false);
        expect((await snapshot()).schema).toEqual(before.schema);
        // Writers paused for the run were resumed, and the failure says so.
        expect(failure).toContain("the writers were resumed");
    });
});

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

describe("a bad backup folder", () => {
    for (const [dir, expected] of [
        ["/proc/1/backups", "rollout:backupDir is under /proc, a kernel file system"],
        ["/etc/passwd/backups", "rollout:backupDir: /etc/passwd is a file, not a folder"],
    ] as const) {
        it(`${dir} fails at once, naming rollout:backupDir, before anything changes`, async () => {
            const s = await createStack({ backupDir: dir });
            const before = await snapshot();
            const failure = await failureOf(s.stack.up());
            expect(failure).toContain(expected);
            expect(await snapshot()).toEqual(before);
            expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
        });
    }
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

