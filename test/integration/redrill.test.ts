/**
 * A re-drill from the same dump (local engine): `npm run drill -- --source-dump`
 * four times on a stack of its own, from a small PROTEA-shaped dump of a real
 * cluster.
 *
 *   1. the first drill restores the dump and keeps a pristine copy, keyed by
 *      the dump's SHA-256, that holds no password;
 *   2. a second drill clones it (the report says so), its data (every table's
 *      count and checksum) is the source's, and the pristine's files are
 *      unchanged after the drill migrated, backfilled, rolled back and
 *      restored its clone;
 *   3. `--fresh` restores again and keeps a new pristine;
 *   4. `--drop-pristine` clones, tears down and drops the pristine; nothing
 *      is left running.
 *
 * No assertion reads a duration: figures belong to bench/redrill.ts.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DrillReport, TableChecksum, tableChecksums } from "../../lib/drill/drillReport";
import { withDb } from "./helpers/db";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { PRISTINE_META, sha256File } from "../../lib/drill/pristineCopy";
import { run } from "../../lib/process/processes";
import { alembic, EXPECTED_HEAD, expectSuccess, PROJECT_ROOT, seedSample } from "./helpers/fixture";
import { isListening as listening } from "../../lib/process/freePort";
import { requireEngine } from "./helpers/requireEngine";
import { treeDigest } from "./helpers/snapshots";

const stack = `redrill-${randomBytes(4).toString("hex")}`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "protea-redrill-"));
const dump = path.join(work, "pre-t16-source.dump");
const reports = path.join(work, "reports");
const source = useTemporaryPostgresCluster({ beforeAll, afterAll });

let sha = "";
let sourceTables: TableChecksum[] = [];
const pristineDir = () => path.join(PROJECT_ROOT, ".state", "drill-pristine", sha);

function env(): NodeJS.ProcessEnv {
    return Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== "INIT_CWD" && !key.startsWith("npm_")));
}

/** `npm run <script> -- <args>` in the checkout, as an operator types it. */
function npmRun(script: string, args: string[]): Promise<{ code: number; output: string }> {
    return new Promise((resolve) => {
        const child = spawn("npm", ["run", "--silent", script, "--", ...args], { cwd: PROJECT_ROOT, env: env(), stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("close", (code) => resolve({ code: code ?? 1, output }));
    });
}

const drill = (...args: string[]) => npmRun("drill", ["--stack", stack, "--source-dump", dump, "--report-dir", reports, ...args]);

function latestReport(): { report: DrillReport; markdown: string } {
    const base = fs.readdirSync(reports).filter((f) => /^drill-report-.*\.json$/.test(f)).sort().pop()!.replace(/\.json$/, "");
    return { report: JSON.parse(fs.readFileSync(path.join(reports, `${base}.json`), "utf8")), markdown: fs.readFileSync(path.join(reports, `${base}.md`), "utf8") };
}

beforeAll(async () => {
    requireEngine();
    const cluster = source();
    expectSuccess(await alembic(cluster.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
    expectSuccess(await seedSample(cluster.sqlalchemyUrl, ["--datasets", "3", "--reranker-models", "40", "--embedding-rows", "30"]), "seed");
    sourceTables = await withDb(cluster.clientConfig, tableChecksums);
    const dumped = await run("pg_dump", ["-F", "c", "-Z", "1", "-f", dump], { env: { ...process.env, ...cluster.libpqEnv } });
    expect(dumped.code, dumped.stderr).toBe(0);
    sha = await sha256File(dump);
}, 300_000);

afterAll(async () => {
    // Whatever a failed assertion left: the clone, the stack, its working folder, the pristine.
    if (fs.existsSync(path.join(PROJECT_ROOT, ".state", "drill", stack))) {
        await npmRun("pulumi", ["destroy", "--stack", stack, "--yes", "--skip-preview"]);
        await npmRun("pulumi", ["stack", "rm", stack, "--yes", "--force"]);
        fs.rmSync(path.join(PROJECT_ROOT, ".state", "drill", stack), { recursive: true, force: true });
    }
    if (sha) fs.rmSync(pristineDir(), { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
}, 300_000);

describe("a re-drill from the same dump (local engine)", () => {
    let createdAt = "";
    let digest = "";
    let port = 0;

    it("the first drill restores the dump and keeps a pristine copy keyed by its SHA-256, without a password in it", async () => {
        expect(sourceTables.map((t) => t.table)).toEqual(expect.arrayContaining(["dataset", "reranker_model"]));
        expect(fs.existsSync(pristineDir())).toBe(false);
        const run = await drill();
        expect(run.code, run.output).toBe(0);
        port = Number(/on 127\.0\.0\.1:(\d+)/.exec(run.output)?.[1]);
        const { report, markdown } = latestReport();
        expect(report.checks.filter((c) => !c.pass)).toEqual([]);
        expect(report.load).toMatchObject({ mode: "restored", sha256: sha });
        expect(report.load?.pristineError).toBeUndefined();
        expect(report.load?.summary).toMatch(new RegExp(`^restored in .*; pristine ${sha.slice(0, 12)} kept for the next drill`));
        expect(report.steps[0].step).toBe("pg_restore of the source dump (-j, file)");
        expect(report.steps[1].step).toMatch(new RegExp(`^pristine copy ${sha.slice(0, 12)} kept for the next drill`));
        expect(markdown).toContain(`Load: restored in `);
        expect(run.output).toContain(`kept the pristine copy ${sha.slice(0, 12)}`);

        const meta = JSON.parse(fs.readFileSync(path.join(pristineDir(), PRISTINE_META), "utf8"));
        expect(meta).toMatchObject({ format: 1, sha256: sha, dumpPath: dump, dumpBytes: fs.statSync(dump).size });
        createdAt = meta.createdAt;
        expect((fs.statSync(path.join(PROJECT_ROOT, ".state", "drill-pristine")).mode & 0o777).toString(8)).toBe("700");
        // The role's password was cleared before the copy: no SCRAM verifier in the shared catalog or the kept WAL.
        for (const folder of ["global", "pg_wal"]) {
            for (const file of fs.readdirSync(path.join(pristineDir(), "data", folder), { withFileTypes: true }).filter((f) => f.isFile())) {
                expect(fs.readFileSync(path.join(pristineDir(), "data", folder, file.name)).includes("SCRAM-SHA-256$"), `${folder}/${file.name}`).toBe(false);
            }
        }
        // Nothing half-written is left beside it.
        expect(fs.readdirSync(path.join(PROJECT_ROOT, ".state", "drill-pristine")).filter((n) => n.includes(sha) && n !== sha)).toEqual([]);
        digest = treeDigest(pristineDir());
    });

    it("a second drill clones it: the report says so, the clone holds the source's rows, and the pristine is unchanged after the drill changed its clone", async () => {
        expect(digest, "the first drill did not run").not.toBe("");
        const run = await drill("--with-restore");
        expect(run.code, run.output).toBe(0);
        const { report, markdown } = latestReport();
        expect(report.checks.filter((c) => !c.pass)).toEqual([]);
        expect(report.load).toMatchObject({ mode: "cloned", sha256: sha });
        expect(report.load?.summary).toMatch(new RegExp(`^cloned from pristine ${sha.slice(0, 12)} in .*no pg_restore`));
        expect(report.steps[0].step).toMatch(new RegExp(`^cloned from pristine ${sha.slice(0, 12)} `));
        expect(report.steps.map((s) => s.step)).not.toContain("pg_restore of the source dump (-j, file)");
        expect(markdown).toContain(`Load: cloned from pristine ${sha.slice(0, 12)} in `);
        expect(run.output).toMatch(/drill: {3}load: cloned from pristine/);
        // The clone as loaded (before the rollout) is the source, table by table.
        expect(report.tablesBeforeRollout).toEqual(sourceTables);
        // The drill migrated, backfilled, rolled back and restored its clone...
        expect(report.checks.map((c) => c.name)).toEqual(expect.arrayContaining(["after up: no NULL schema_sha_v2", "after rollback: columns and indexes gone", "after restore: every table's rows as before the rollout", "clone removed"]));
        // ...and none of it reached the pristine.
        expect(treeDigest(pristineDir())).toBe(digest);
        expect(JSON.parse(fs.readFileSync(path.join(pristineDir(), PRISTINE_META), "utf8")).createdAt).toBe(createdAt);
        expect(await listening(port)).toBe(false);
    });

    it("--fresh restores the dump again and keeps a new pristine copy", async () => {
        expect(createdAt, "the first drill did not run").not.toBe("");
        const run = await drill("--fresh");
        expect(run.code, run.output).toBe(0);
        expect(run.output).toContain(`--fresh: this drill restores the dump and keeps a new copy: dropped the pristine copy ${sha.slice(0, 12)}`);
        const { report } = latestReport();
        expect(report.checks.filter((c) => !c.pass)).toEqual([]);
        expect(report.load).toMatchObject({ mode: "restored", sha256: sha });
        const meta = JSON.parse(fs.readFileSync(path.join(pristineDir(), PRISTINE_META), "utf8"));
        expect(meta.createdAt).not.toBe(createdAt);
    });

    it("--drop-pristine clones, tears down and drops the pristine copy; nothing is left running", async () => {
        expect(fs.existsSync(pristineDir()), "no pristine to drop").toBe(true);
        const run = await drill("--drop-pristine");
        expect(run.code, run.output).toBe(0);
        const { report } = latestReport();
        expect(report.checks.filter((c) => !c.pass)).toEqual([]);
        expect(report.load).toMatchObject({ mode: "cloned", sha256: sha });
        expect(report.checks.find((c) => c.name === "pristine copy dropped")).toMatchObject({ pass: true });
        expect(report.checks.find((c) => c.name === "clone removed")?.detail).toContain(`nothing listens on 127.0.0.1:${port}`);
        expect(fs.existsSync(pristineDir())).toBe(false);
        expect(await listening(port)).toBe(false);

        // Without a pristine the next drill restores again.
        const again = await drill("--drop-pristine");
        expect(again.code, again.output).toBe(0);
        expect(latestReport().report.load).toMatchObject({ mode: "restored", sha256: sha });
        expect(fs.existsSync(pristineDir())).toBe(false);
    });
});
