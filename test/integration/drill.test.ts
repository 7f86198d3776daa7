/**
 * `npm run drill` end to end, as a newcomer runs it: in a fresh `git clone`
 * of this checkout's current work tree (uncommitted changes included), made
 * inside a 0700 folder that the `postgres` OS user cannot traverse, with the
 * clone's own backend, passphrase and port. Checks that the drill, and the
 * README's by-hand commands, leave every tracked file as it was; that no
 * stored command names the clone's folder; that the clone's port is picked
 * once and reused; that the restore rehearsal brings back every table's rows
 * (count and checksum as before the rollout); and that nothing listens on the
 * port after a teardown.
 *
 * No assertion here reads a duration or the report's table of runbook times:
 * figures belong to bench/ scripts, never to tests.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DrillReport } from "../../lib/drill/drillReport";
import { PROJECT_ROOT } from "./helpers/fixture";
import { isListening as listening } from "../../lib/process/freePort";
import { requireEngine } from "./helpers/requireEngine";

// mkdtemp makes it 0700: the postgres OS user cannot reach anything below it.
const parent = fs.mkdtempSync(path.join(os.tmpdir(), "protea-drill-"));
const clone = path.join(parent, "protea");

function git(cwd: string, ...args: string[]): string {
    return execFileSync("git", args, { cwd, encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
}

/** The environment of a shell in the clone: none of this checkout's backend, passphrase or tools. */
function cloneEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
        if (["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "INIT_CWD"].includes(key) || key.startsWith("npm_")) continue;
        env[key] = value;
    }
    const ownTools = path.join(PROJECT_ROOT, ".state", "tools", "path");
    env.PATH = (env.PATH ?? "").split(path.delimiter).filter((dir) => dir !== ownTools).join(path.delimiter);
    return env;
}

/** `npm run <script> -- <args>` in the clone, as an operator types it. */
function npmRun(script: string, args: string[]): Promise<{ code: number; stdout: string; output: string }> {
    return new Promise((resolve) => {
        const child = spawn("npm", ["run", "--silent", script, "--", ...args], { cwd: clone, env: cloneEnv(), stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let output = "";
        child.stdout.on("data", (d) => {
            stdout += d;
            output += d;
        });
        child.stderr.on("data", (d) => (output += d));
        child.on("close", (code) => resolve({ code: code ?? 1, stdout, output }));
    });
}

/** A fresh clone of the work tree as it is now, staged, with what `npm run setup` would install borrowed from here. */
function makeClone(): void {
    git(parent, "clone", "--quiet", PROJECT_ROOT, clone);
    const files = git(PROJECT_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0").filter(Boolean);
    for (const file of files) {
        const from = path.join(PROJECT_ROOT, file);
        const to = path.join(clone, file);
        if (!fs.existsSync(from)) {
            fs.rmSync(to, { force: true });
            continue;
        }
        fs.mkdirSync(path.dirname(to), { recursive: true });
        fs.copyFileSync(from, to);
        fs.chmodSync(to, fs.statSync(from).mode & 0o777);
    }
    // The index holds the work tree: any change the drill makes shows in `git status`.
    git(clone, "add", "--all");

    // node_modules: a real folder (so .gitignore's `node_modules/` covers it) of links to ours.
    fs.mkdirSync(path.join(clone, "node_modules"));
    for (const entry of fs.readdirSync(path.join(PROJECT_ROOT, "node_modules"))) {
        fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules", entry), path.join(clone, "node_modules", entry));
    }
    fs.mkdirSync(path.join(clone, ".state"));
    for (const dir of ["engine", "venv"]) fs.symlinkSync(path.join(PROJECT_ROOT, ".state", dir), path.join(clone, ".state", dir));
    // Copied, not linked: the tools find their checkout from where they are.
    fs.cpSync(path.join(PROJECT_ROOT, ".state", "tools"), path.join(clone, ".state", "tools"), { recursive: true, verbatimSymlinks: true });
}

/** Every create/update/delete command stored in the clone's drill stack, by resource name. */
async function storedCommands(): Promise<{ name: string; command: string }[]> {
    const exported = await npmRun("pulumi", ["stack", "export", "--stack", "drill"]);
    expect(exported.code, exported.output).toBe(0);
    const resources: { type: string; urn: string; inputs?: Record<string, unknown> }[] = JSON.parse(exported.stdout).deployment.resources ?? [];
    return resources
        .filter((r) => r.type === "command:local:Command")
        .flatMap((r) => ["create", "update", "delete"].map((k) => ({ name: r.urn.split("::").pop()!, command: r.inputs?.[k] })))
        .filter((c): c is { name: string; command: string } => typeof c.command === "string");
}

function latestReport(): DrillReport {
    const dir = path.join(clone, "drill-reports");
    const json = fs.readdirSync(dir).filter((f) => /^drill-report-.*\.json$/.test(f)).sort().pop()!;
    return JSON.parse(fs.readFileSync(path.join(dir, json), "utf8"));
}

let statusBefore = "";

beforeAll(() => {
    requireEngine();
    makeClone();
    statusBefore = git(clone, "status", "--porcelain");
}, 120_000);

afterAll(async () => {
    // Whatever a failed assertion left running.
    if (fs.existsSync(path.join(clone, ".state", "drill", "drill"))) await npmRun("pulumi", ["destroy", "--stack", "drill", "--yes", "--skip-preview"]);
    fs.rmSync(parent, { recursive: true, force: true });
}, 300_000);

describe("npm run drill, on a fresh clone under a folder the postgres OS user cannot traverse", () => {
    let port = 0;
    let clusterDir = "";

    it("rehearses the rollout with --keep --with-restore: every check PASS, a picked port, the cluster moved to a reachable place", async () => {
        expect((fs.statSync(parent).mode & 0o777).toString(8)).toBe("700");
        const run = await npmRun("drill", ["--keep", "--with-restore"]);
        expect(run.code, run.output).toBe(0);
        expect(run.output).toMatch(/drill: \[1\/8\] stack drill/);

        port = Number(/picked the free port 127\.0\.0\.1:(\d+)/.exec(run.output)?.[1]);
        expect(port, run.output).toBeGreaterThan(0);
        clusterDir = /cannot reach \S+: the clone's cluster goes to (\/\S+)/.exec(run.output)?.[1] ?? "";
        expect(clusterDir, run.output).toMatch(/^\/var\/tmp\/protea-drill-[0-9a-f]{16}$/);
        expect(fs.existsSync(path.join(clusterDir, "data"))).toBe(true);
        expect(await listening(port)).toBe(true); // kept

        const report = latestReport();
        // Every check of a --keep --with-restore drill (no teardown check: the clone is kept).
        expect(report.checks.map((c) => c.name)).toEqual(expect.arrayContaining([
            "backup written and verified", "after up: no NULL schema_sha_v2", "second up changes nothing",
            "after rollback: columns and indexes gone", "after restore: alembic at expected head",
        ]));
        expect(report.checks.length).toBeGreaterThanOrEqual(12);
        expect(report.checks.filter((c) => !c.pass)).toEqual([]);
        // The restore brought back every table's rows as the clone held them before the rollout.
        expect(report.tablesBeforeRollout?.map((t) => [t.table, t.rows])).toEqual(expect.arrayContaining([["alembic_version", 1], ["dataset", 2], ["reranker_model", 51]]));
        for (const t of report.tablesBeforeRollout ?? []) expect(t.checksum).toMatch(/^[0-9a-f]{32}$/);
        const data = report.checks.find((c) => c.name === "after restore: every table's rows as before the rollout");
        expect(data, JSON.stringify(report.checks)).toMatchObject({ pass: true });
        expect(data?.detail).toMatch(/^\d+ tables, \d+ rows, each table's count and checksum as before: .*dataset 2, .*reranker_model 51/);
        expect(run.output).toContain("drill:     create drill-tables\n");
        expect(report.rows).toEqual({ dataset: 2, reranker_model: 51 });
        // What a prod stack's rollout:rehearsal compares with and budgets from.
        expect(report.rehearsal).toMatchObject({ rows: { dataset: 2, reranker_model: 51 }, expectedHead: "9d2fb5a07e4c", targetRevision: "a3c1d8e2f4b6" });
        expect(report.rehearsal?.pendingSqlSha256).toMatch(/^[0-9a-f]{64}$/);
        expect(Object.keys(report.rehearsal?.stepMillis ?? {}).sort()).toEqual(["backfillApply", "backfillDryRun", "backup", "upgrade"]);
        expect(report.backupBytes).toBeGreaterThan(0);
        expect(report.steps.map((s) => s.step)).toContain("alembic downgrade to the expected head");
        const markdown = fs.readFileSync(path.join(clone, "drill-reports", fs.readdirSync(path.join(clone, "drill-reports")).find((f) => f.endsWith(".md"))!), "utf8");
        expect(markdown).toContain("| alembic downgrade to the expected head |");
        expect(markdown).toContain("Checks: ");
        expect(markdown).toContain("| after restore: every table's rows as before the rollout | PASS |");
        expect(markdown).toContain("Data before the rollout, which the restore must bring back:");

        // The generated secrets and port live in .state, never in the tracked template.
        const working = fs.readFileSync(path.join(clone, ".state", "drill", "drill", "Pulumi.drill.yaml"), "utf8");
        expect(working).toMatch(/encryptionsalt: /);
        expect(working).toMatch(/drill:password:\s+secure: /);
        expect(working).toMatch(new RegExp(`drill:port: ['"]?${port}['"]?\n`));
        expect(git(clone, "status", "--porcelain")).toBe(statusBefore);
    });

    it("stores no command that names the clone's folder; the README's by-hand up and destroy work and stop the clone", async () => {
        expect(port, "the first drill did not run").toBeGreaterThan(0);
        const up = await npmRun("pulumi", ["up", "--stack", "drill", "--yes", "--skip-preview"]);
        expect(up.code, up.output).toBe(0);
        const commands = await storedCommands();
        const names = new Set(commands.map((c) => c.name));
        for (const name of ["drill-cluster", "drill-load", "preflight-gate", "backup-dump", "migration-upgrade", "backfill-apply", "verification-gate"]) expect(names).toContain(name);
        const start = commands.find((c) => c.name === "drill-cluster")!.command;
        expect(start).toMatch(/drill-db(\.js)? start --state-dir \.state\/drill\/drill\/cluster --relocatable --port \d+$/);
        for (const { name, command } of commands) {
            expect(command, name).not.toContain(clone);
            expect(command, name).not.toContain(fs.realpathSync(clone));
            expect(command, name).not.toContain(PROJECT_ROOT);
        }

        const destroy = await npmRun("pulumi", ["destroy", "--stack", "drill", "--yes", "--skip-preview"]);
        expect(destroy.code, destroy.output).toBe(0);
        expect(await listening(port)).toBe(false);
        expect(fs.existsSync(clusterDir)).toBe(false);
        expect(git(clone, "status", "--porcelain")).toBe(statusBefore);
    });

    it("a second drill reuses the kept port, tears the clone down, and nothing listens on its port afterwards", async () => {
        expect(port, "the first drill did not run").toBeGreaterThan(0);
        const run = await npmRun("drill", []);
        expect(run.code, run.output).toBe(0);
        expect(run.output).not.toMatch(/picked the free port/);
        expect(run.output).toContain(`on 127.0.0.1:${port}`);
        const report = latestReport();
        expect(report.checks.filter((c) => !c.pass)).toEqual([]);
        expect(report.checks.find((c) => c.name === "clone removed")?.detail).toContain(`nothing listens on 127.0.0.1:${port}`);

        expect(await listening(port)).toBe(false);
        expect(fs.existsSync(clusterDir)).toBe(false);
        expect(git(clone, "status", "--porcelain")).toBe(statusBefore);
    });
});
