/**
 * The rollout's safety when the order changes, under the real engine against
 * a real cluster and the PROTEA fixture (2 of 3, each on its own cluster so
 * the three run side by side): damaged and interrupted restores, two stacks
 * on one database, a rollout lock held elsewhere, an out-of-band downgrade,
 * and a bad backup folder.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alembic, alembicCurrent, EXPECTED_HEAD, expectSuccess, PROJECT_ROOT } from "./helpers/fixture";
import { dumpsIn, failureOf, useSafetyDatabase } from "./helpers/safetyDatabase";

const { cluster, npmRun, migrationPresent, snapshot, createStack, rollBack } = useSafetyDatabase({ beforeAll, afterAll });

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
