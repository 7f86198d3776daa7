/**
 * A re-drill from the same dump: the first local drill's load (initdb,
 * pg_restore -j N, then a pristine copy of the restored data directory kept
 * under .state/drill-pristine/<sha256>) against a second drill's load from the
 * same dump (a copy of that pristine started with the drill's password: no
 * initdb, no pg_restore).
 *
 * Both go through the product's code path, the two commands
 * components/drillDatabase.ts stores for a local drill from a dump:
 *   `protea-drill-db start-from-dump --state-dir … --relocatable --port N --dump FILE`
 *     (DRILL_DB_PASSWORD in its environment), then
 *   `protea-drill-db load-dump --state-dir … --relocatable --dump FILE --jobs N`
 *     (PROTEA_DB_URL), wrapped in its `timed "load"`.
 * A drill's load is both commands' wall time (the clone's work happens in the
 * first, the restore's in the second). After each load, every table's row
 * count and checksum (lib/drill/drillReport.ts tableChecksums) is compared with the
 * source's; the pristine's files are compared before and after the clones.
 *
 * The source: the fixture's schema and sample (2,000 datasets, 200,000
 * reranker models) plus --embedding-rows rows of the bulk embedding table
 * (about 1.1 KiB each: 1,000,000 makes a dump of about 1.1 GiB), dumped with
 * the host's `pg_dump -F c -Z 1` (the rollout's default backup compression).
 *
 * Prints every load, the median clone and the ratio clone ÷ restore; asserts
 * nothing. The clusters, the dump and the bench's pristine copy go away, also
 * on Ctrl-C.
 *
 * Target (issue 12, P2b): the second drill's load at most 0.05x the first's.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ClientConfig } from "pg";
import { checkoutRelative } from "../lib/config/drillConfig";
import { tableChecksums, type TableChecksum } from "../lib/drill/drillReport";
import { startPostgresCluster } from "../lib/postgres/cluster/cluster";
import { findFreePort } from "../lib/process/freePort";
import type { LoadRecord } from "../lib/drill/loadRecord";
import { pristineRoot, sha256File } from "../lib/drill/pristineCopy";
import { run, runShell, tail } from "../lib/process/processes";
import { missingTools } from "../lib/process/builtTools";
import { parseRolloutResult, projectCommand } from "../lib/runbook/rolloutCli";
import { stepMillis, timed } from "../lib/process/shell";
import { queryScalar, withDb } from "../test/integration/helpers/db";
import { alembic, EXPECTED_HEAD, expectSuccess, seedSample } from "../test/integration/helpers/fixture";
import { treeDigest } from "../test/integration/helpers/snapshots";
import { benchFlags, cleanupOnExit, loadAverage, machineLine, median, must, removeOnExit, say, table } from "./common";

const CLI = {
    usage: "bash scripts/with-engine.sh npx ts-node --transpile-only bench/redrill.ts",
    description: `A re-drill from the same dump: the first local drill's load (initdb, pg_restore,
a pristine copy kept) against a second drill's (a copy of that pristine), both
through protea-drill-db start-from-dump + load-dump as the drill stores them
(figures only, asserts nothing).

Needs the project's tools on PATH (scripts/with-engine.sh puts them there) and
PostgreSQL 15 client and server binaries. Progress goes to stderr
("bench: ..."), the summary to stdout.`,
    flags: {
        "embedding-rows": { default: 100_000, min: 0, description: "dataset_embedding rows in the source, about 1.1 KiB each: 1000000 makes a dump of about 1.1 GiB" },
        clones: { default: 3, min: 1, description: "second-drill loads to run, each into a fresh cluster" },
        jobs: { default: 2, min: 1, description: "the drill's pg_restore -j (rollout:restoreJobs)" },
    },
} as const;

const flags = benchFlags(CLI);

const SOURCE = { datasets: 2000, models: 200_000 };

interface LoadFigures {
    label: string;
    mode: string;
    /** Wall seconds of start-from-dump + load-dump. */
    seconds: number;
    startSeconds: number;
    /** The `timed "load"` step, as the drill's report gets it. */
    loadStep: number;
    record?: LoadRecord;
    /** Every table's count and checksum as the source's. */
    matches: boolean;
}

function checksums(config: ClientConfig): Promise<TableChecksum[]> {
    return withDb(config, tableChecksums);
}

/** One drill's load: start-from-dump + load-dump into a fresh cluster, checked against the source, then the cluster stopped. */
async function drillLoad(label: string, workDir: string, dump: string, expected: string): Promise<LoadFigures> {
    const where = ["--state-dir", path.join(workDir, `cluster-${label}`), "--relocatable"];
    const stop = projectCommand("drill-db.ts", "stop", ...where);
    const forget = cleanupOnExit(() => void spawnSync("/bin/sh", ["-c", stop], { stdio: "ignore" }));
    try {
        const port = await findFreePort();
        const password = randomBytes(18).toString("base64url");
        const dumpArg = checkoutRelative(dump);
        const t0 = performance.now();
        const started = await must("protea-drill-db start-from-dump", projectCommand("drill-db.ts", "start-from-dump", ...where, "--port", port, "--dump", dumpArg), { DRILL_DB_PASSWORD: password });
        const startSeconds = (performance.now() - t0) / 1000;
        const url = `postgresql+psycopg://protea:${encodeURIComponent(password)}@127.0.0.1:${port}/protea`;
        const loaded = await must("protea-drill-db load-dump", timed("load", projectCommand("drill-db.ts", "load-dump", ...where, "--dump", dumpArg, "--jobs", flags.jobs)), { PROTEA_DB_URL: url });
        const seconds = (performance.now() - t0) / 1000;
        const { relocated } = parseRolloutResult<{ relocated?: boolean }>(started.stdout);
        const record = parseRolloutResult<LoadRecord>(loaded.stdout);
        const tables = await checksums({ host: "127.0.0.1", port, user: "protea", password, database: "protea" });
        return {
            label,
            mode: `${record.mode}${relocated ? " (cluster under /var/tmp)" : ""}`,
            seconds,
            startSeconds,
            loadStep: (stepMillis(loaded.stderr, "load") ?? NaN) / 1000,
            record,
            matches: JSON.stringify(tables) === expected,
        };
    } finally {
        await must("protea-drill-db stop", stop, {}).catch((err: Error) => say(`${label}: ${err.message}`));
        forget();
    }
}

const secs = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? "—" : `${value.toFixed(2)} s`);
const gib = (bytes: number | undefined) => (bytes === undefined ? "—" : bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

async function main(): Promise<void> {
    const loadBefore = loadAverage();
    say(`embedding rows: ${flags["embedding-rows"]}; clones: ${flags.clones}; drill pg_restore -j ${flags.jobs}; ${os.cpus().length} cores, load average ${loadBefore}`);
    const notBuilt = missingTools();
    if (notBuilt) throw new Error(notBuilt);
    if ((await runShell("command -v protea-drill-db")).code !== 0) throw new Error("protea-drill-db is not on PATH: run through `bash scripts/with-engine.sh`");

    const workDir = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), "protea-bench-redrill-")));
    const dump = path.join(workDir, "source.dump");
    const source = await startPostgresCluster({ log: say });
    let sourceBytes: number;
    let expected: string;
    let rows: number;
    try {
        say(`source: fixture schema, ${SOURCE.datasets} datasets, ${SOURCE.models} reranker models, ${flags["embedding-rows"]} embedding rows (seeding)`);
        expectSuccess(await alembic(source.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
        expectSuccess(await seedSample(source.sqlalchemyUrl, ["--datasets", String(SOURCE.datasets), "--reranker-models", String(SOURCE.models), "--embedding-rows", String(flags["embedding-rows"])]), "seed");
        sourceBytes = Number(await queryScalar(source.clientConfig, "SELECT pg_database_size(current_database())"));
        const tables = await checksums(source.clientConfig);
        expected = JSON.stringify(tables);
        rows = tables.reduce((sum, t) => sum + t.rows, 0);
        say(`source: ${tables.map((t) => `${t.table} ${t.rows}`).join(", ")}; pg_dump -F c -Z 1`);
        const t0 = performance.now();
        const dumped = await run("pg_dump", ["-F", "c", "-Z", "1", "-f", dump], { env: { ...process.env, ...source.libpqEnv } });
        if (dumped.code !== 0) throw new Error(`pg_dump failed (exit ${dumped.code}):\n${tail(dumped.stderr)}`);
        say(`pg_dump: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
        await source.stop();
    }
    const dumpBytes = fs.statSync(dump).size;
    const t0 = performance.now();
    const sha = await sha256File(dump);
    say(`database ${gib(sourceBytes)}, dump ${gib(dumpBytes)} (${dumpBytes} bytes, sha256 ${sha.slice(0, 12)}…, hashed here in ${((performance.now() - t0) / 1000).toFixed(2)} s)`);
    // The bench's own pristine copy goes, whatever happens (this dump is new: no drill made it).
    const root = pristineRoot();
    const dropOurs = () => {
        if (!fs.existsSync(root)) return;
        for (const name of fs.readdirSync(root)) if (name === sha || name.includes(`-${sha}-`)) fs.rmSync(path.join(root, name), { recursive: true, force: true });
    };
    cleanupOnExit(dropOurs);

    const first = await drillLoad("first", workDir, dump, expected);
    say(`first drill's load: ${first.mode} in ${secs(first.seconds)}; ${first.matches ? "every table as the source" : "DIFFERS from the source"}; load average ${loadAverage()}`);
    const pristineDir = path.join(root, sha);
    const before = fs.existsSync(pristineDir) ? treeDigest(pristineDir) : undefined;
    const clones: LoadFigures[] = [];
    for (let i = 1; i <= flags.clones; i++) {
        const figures = await drillLoad(`second-${i}`, workDir, dump, expected);
        clones.push(figures);
        say(`second drill's load ${i}/${flags.clones}: ${figures.mode} in ${secs(figures.seconds)}; ${figures.matches ? "every table as the source" : "DIFFERS from the source"}; load average ${loadAverage()}`);
    }
    const unchanged = before !== undefined && fs.existsSync(pristineDir) && treeDigest(pristineDir) === before;
    const clone = median(clones.map((c) => c.seconds));
    const r = first.record;
    const lines = [
        "",
        `re-drill from one pg_dump -F c -Z 1: dump ${gib(dumpBytes)} (${dumpBytes} bytes) of a ${gib(sourceBytes)} database`,
        `(${SOURCE.datasets} datasets, ${SOURCE.models} reranker models, ${flags["embedding-rows"]} embedding rows; ${rows} rows in all)`,
        `a drill's load = protea-drill-db start-from-dump + load-dump (pg_restore -j ${flags.jobs}), wall time; the cluster's teardown is not timed`,
        `pristine copy: ${gib(r?.pristineBytes)} in ${r?.pristineDir ? checkoutRelative(r.pristineDir) : "—"}${r?.pristineError ? ` (NOT KEPT: ${r.pristineError})` : ""}; ${unchanged ? "unchanged by the clones (every file's content)" : "CHANGED OR MISSING after the clones"}`,
        `${[first, ...clones].every((f) => f.matches) ? "every load has the source's tables, row counts and checksums" : "SOME LOADS DIFFER FROM THE SOURCE (see the runs)"}`,
        `machine: ${machineLine(loadBefore)}`,
        "",
        table([
            ["drill", "mode", "load (both commands)", "start-from-dump", "\"load\" step", "sha256", "pg_restore", "keep pristine", "copy", "start on copy"],
            ...[first, ...clones].map((f) => [
                f.label, f.mode, secs(f.seconds), secs(f.startSeconds), secs(f.loadStep), secs(f.record?.hashSeconds), secs(f.record?.restoreSeconds),
                secs(f.record?.mode === "restored" ? f.record.pristineSeconds : undefined), secs(f.record?.copySeconds), secs(f.record?.startSeconds),
            ]),
        ]),
        "",
        `first drill (restore) ${secs(first.seconds)}; second drill (clone, median of ${clones.length}) ${secs(clone)}; second / first ${(clone / first.seconds).toFixed(3)}x (target <= 0.05x)`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    dropOurs();
}

main().catch((err: Error) => {
    say(err.message);
    process.exit(1);
});
