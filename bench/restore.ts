/**
 * The drill's restore against the runbook's, on one `pg_dump -F c` of a
 * multi-table, application-shaped database made with the host's pg_dump: the
 * fixture's schema and sample (alembic, seed_sample.py, with its real[]
 * embedding table) plus wide text rows with jsonb, text[] and tsvector
 * columns, narrow numeric rows, incompressible bytea, B-tree and GIN indexes
 * and foreign keys (bench/restoreSource.ts); 480,000 documents make a dump
 * of 1.01 GiB (1.09 GB) from a 2.6 GiB database.
 *
 *   drill:   the product's own code path. A fresh cluster started as the drill
 *            starts it (`protea-drill-db start --state-dir … --relocatable
 *            --port N`, durability off), then the drill's load command exactly
 *            as components/drillDatabase.ts stores it:
 *            `protea-drill-db restore-dump --dump FILE --jobs N` with
 *            PROTEA_DB_URL in its environment, wrapped in its `timed "load"`.
 *   runbook: the runbook's exact command,
 *            `docker exec -i <container> pg_restore -U protea -d protea < FILE`,
 *            into a fresh PostgreSQL container with default settings
 *            (test/integration/helpers/dockerPostgres.ts).
 *
 * Only the restore is timed (not starting or removing the target). Each round
 * runs both sides, each into a fresh target, alternating which goes first.
 * Prints every run, the median per side and the ratio of the medians; asserts
 * nothing. Every cluster, container and folder goes away, also on Ctrl-C.
 *
 * Target (DESIGN.md): the drill's restore at most 0.6x the runbook's.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client, type ClientConfig } from "pg";
import { checkoutRelative } from "../lib/config/drillConfig";
import { startPostgresCluster } from "../lib/postgres/cluster/cluster";
import { findFreePort } from "../lib/process/freePort";
import { run, runShell, tail } from "../lib/process/processes";
import { missingTools } from "../lib/process/builtTools";
import { parseRolloutResult, projectCommand } from "../lib/runbook/rolloutCli";
import { commandLine, quote, stepMillis, timed } from "../lib/process/shell";
import { queryScalar } from "../test/integration/helpers/db";
import { ensureDockerInstalled, ensurePgvectorImage, runDockerPostgres, startDockerEngine } from "../test/integration/helpers/dockerPostgres";
import { benchFlags, cleanupOnExit, loadAverage, machineLine, median, must, removeOnExit, say, table } from "./common";
import { buildRestoreSource, FIXTURE_ROWS, type SourceShape } from "./restoreSource";

const CONTAINER = "protea-bench-restore";
/** The label dockerPostgres.ts puts on its containers: only such a container is ever removed here. */
const CONTAINER_LABEL = "protea.test-container";

const CLI = {
    usage: "bash scripts/with-engine.sh npx ts-node --transpile-only bench/restore.ts",
    description: `The drill's restore (protea-drill-db restore-dump -j N into a fresh cluster
started by protea-drill-db start) against the runbook's
(docker exec -i ${CONTAINER} pg_restore -U protea -d protea < dump into a fresh
PostgreSQL container with default settings), on one pg_dump -F c of a
multi-table application-shaped database: the fixture's tables and sample,
documents (wide text, jsonb, text[], tsvector), events (narrow numeric rows),
attachments (bytea), users; B-tree and GIN indexes, foreign keys
(bench/restoreSource.ts). Figures only, asserts nothing.

Needs the project's tools on PATH (scripts/with-engine.sh puts them there),
PostgreSQL 15 client and server binaries, and Docker (started, and the image
built, when missing: see test/integration/helpers/dockerPostgres.ts).
Progress goes to stderr ("bench: ..."), the summary to stdout.`,
    flags: {
        rounds: { default: 3, min: 1, description: "rounds; each restores once per side into a fresh target, alternating which side goes first" },
        rows: {
            default: 480_000,
            min: 10,
            description: "documents in the source; the other tables scale with it (10 events, 1/2 embedding, 1/4 attachment, 1/10 user per document): 480000 makes a dump of 1.01 GiB from a 2.6 GiB database",
        },
        jobs: { default: 2, min: 1, description: "the drill's pg_restore -j (rollout:restoreJobs)" },
    },
} as const;

const flags = benchFlags(CLI);

/** What a restored database holds: tables with their exact row counts, and the number of indexes. */
async function contents(config: ClientConfig): Promise<{ version: string; signature: string; rows: number }> {
    const client = new Client(config);
    await client.connect();
    try {
        const version = (await client.query("SHOW server_version")).rows[0].server_version as string;
        const tables = (await client.query("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1")).rows.map((r) => r.relname as string);
        const counts: string[] = [];
        let rows = 0;
        for (const table of tables) {
            const n = Number((await client.query(`SELECT count(*) AS n FROM public."${table.replace(/"/g, '""')}"`)).rows[0].n);
            rows += n;
            counts.push(`${table}=${n}`);
        }
        const indexes = Number((await client.query("SELECT count(*) AS n FROM pg_indexes WHERE schemaname = 'public'")).rows[0].n);
        const gin = Number((await client.query("SELECT count(*) AS n FROM pg_indexes WHERE schemaname = 'public' AND indexdef LIKE '% USING gin %'")).rows[0].n);
        const foreignKeys = Number((await client.query("SELECT count(*) AS n FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace")).rows[0].n);
        return { version: version.split(" ")[0], signature: `${counts.join(", ")}; ${indexes} indexes (${gin} GIN), ${foreignKeys} foreign keys`, rows };
    } finally {
        await client.end();
    }
}

interface RunFigures {
    round: number;
    side: "drill" | "runbook";
    /** Wall time of the restore command. */
    seconds: number;
    /** drill: what its report shows (the `timed "load"` step), and pg_restore alone (the tool's own figure). */
    loadStep?: number;
    pgRestore?: number;
    /** Core-seconds the whole machine was busy during the restore (/proc/stat), and what was there: wall time x cores. */
    busy: { used: number; available: number };
    /** Same tables, row counts and index count as the source. */
    matches: boolean;
    version: string;
}

/** Busy and total core-seconds since boot (/proc/stat's first line; iowait counts as idle). */
function cpuTimes(): { busy: number; total: number } {
    const [, ...fields] = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
    const ticks = fields.slice(0, 8).map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    return { busy: (total - ticks[3] - ticks[4]) / 100, total: total / 100 };
}

/** Runs `work`, measuring how busy the machine's cores were meanwhile: on a quiet machine, what the restore used. */
async function withCpuBusy<T>(work: () => Promise<T>): Promise<{ value: T; busy: { used: number; available: number } }> {
    const before = cpuTimes();
    const value = await work();
    const after = cpuTimes();
    return { value, busy: { used: after.busy - before.busy, available: after.total - before.total } };
}

/** One drill restore: a cluster started as the drill starts it, the drill's load command, the cluster stopped (all but the load untimed). */
async function drillRun(round: number, workDir: string, dump: string, expected: string): Promise<RunFigures> {
    const where = ["--state-dir", path.join(workDir, `drill-cluster-${round}`), "--relocatable"];
    const stop = projectCommand("drill-db.ts", "stop", ...where);
    const forget = cleanupOnExit(() => void spawnSync("/bin/sh", ["-c", stop], { stdio: "ignore" }));
    try {
        const port = await findFreePort();
        const password = randomBytes(18).toString("base64url");
        const started = await must("protea-drill-db start", projectCommand("drill-db.ts", "start", ...where, "--port", port), { DRILL_DB_PASSWORD: password });
        const { relocated } = parseRolloutResult<{ relocated: boolean }>(started.stdout);
        say(`round ${round}: drill cluster started on 127.0.0.1:${port}${relocated ? " (relocated under /var/tmp, as the drill's default cluster is when postgres cannot reach the checkout)" : ""}`);

        // components/drillDatabase.ts: `timed("load", loadCommand(args))`, local engine with a source dump.
        const load = timed("load", projectCommand("drill-db.ts", "restore-dump", "--dump", checkoutRelative(dump), "--jobs", flags.jobs));
        const url = `postgresql+psycopg://protea:${encodeURIComponent(password)}@127.0.0.1:${port}/protea`;
        const t0 = performance.now();
        const { value: result, busy } = await withCpuBusy(() => runShell(load, { env: { ...process.env, PROTEA_DB_URL: url } }));
        const seconds = (performance.now() - t0) / 1000;
        if (result.code !== 0) throw new Error(`drill restore failed (exit ${result.code}):\n${tail(result.stderr || result.stdout)}`);
        const tool = parseRolloutResult<{ seconds: number }>(result.stdout);

        const restored = await contents({ host: "127.0.0.1", port, user: "protea", password, database: "protea" });
        return {
            round,
            side: "drill",
            seconds,
            loadStep: (stepMillis(result.stderr, "load") ?? NaN) / 1000,
            pgRestore: tool.seconds,
            busy,
            matches: restored.signature === expected,
            version: restored.version,
        };
    } finally {
        await must("protea-drill-db stop", stop, {}).catch((err: Error) => say(`round ${round}: ${err.message}`));
        forget();
    }
}

/** The helper's container named CONTAINER, if any: removed with its password folder (synchronous, for exit). */
function removeContainerSync(): void {
    const label = spawnSync("docker", ["inspect", "--type", "container", "--format", `{{index .Config.Labels "${CONTAINER_LABEL}"}}`, CONTAINER], { encoding: "utf8" });
    if (label.status !== 0 || label.stdout.trim() !== "1") return;
    const mounts = spawnSync("docker", ["inspect", "--format", "{{range .Mounts}}{{println .Source}}{{end}}", CONTAINER], { encoding: "utf8" });
    spawnSync("docker", ["rm", "-f", "-v", CONTAINER], { stdio: "ignore" });
    for (const source of mounts.stdout?.split("\n") ?? []) {
        if (path.basename(source) === "postgres-password" && path.basename(path.dirname(source)).startsWith("protea-test-container-")) {
            fs.rmSync(path.dirname(source), { recursive: true, force: true });
        }
    }
}

/** One runbook restore: a fresh container, the runbook's command, the container removed (all but the command untimed). */
async function runbookRun(round: number, image: string, dump: string, expected: string): Promise<RunFigures> {
    const forget = cleanupOnExit(removeContainerSync);
    const container = await runDockerPostgres({ name: CONTAINER, image });
    try {
        // The runbook's command, as an operator types it.
        const command = `${commandLine("docker", "exec", "-i", container.container, "pg_restore", "-U", "protea", "-d", "protea")} < ${quote(dump)}`;
        const t0 = performance.now();
        const { value: result, busy } = await withCpuBusy(() => runShell(command, { env: process.env }));
        const seconds = (performance.now() - t0) / 1000;
        if (result.code !== 0) throw new Error(`runbook restore failed (exit ${result.code}):\n${tail(result.stderr || result.stdout)}`);
        const restored = await contents(container.clientConfig);
        return { round, side: "runbook", seconds, busy, matches: restored.signature === expected, version: restored.version };
    } finally {
        await container.remove();
        forget();
    }
}

const secs = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? "—" : `${value.toFixed(1)} s`);
const gib = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

async function main(): Promise<void> {
    const loadBefore = loadAverage();
    say(`rounds: ${flags.rounds}; documents: ${flags.rows}; drill pg_restore -j ${flags.jobs}; ${os.cpus().length} cores, load average ${loadBefore}`);
    const notBuilt = missingTools();
    if (notBuilt) throw new Error(notBuilt);
    if ((await runShell("command -v protea-drill-db")).code !== 0) throw new Error("protea-drill-db is not on PATH: run through `bash scripts/with-engine.sh`");

    // Docker first: it is what most often is not there, and the source takes minutes.
    await ensureDockerInstalled();
    const engine = await startDockerEngine();
    try {
        const image = await ensurePgvectorImage();
        const workDir = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), "protea-bench-restore-")));
        const dump = path.join(workDir, "source.dump");

        // The source: the host's PostgreSQL (the drill's), durability off only to generate it faster; dumped with the host's pg_dump.
        const source = await startPostgresCluster({ log: say, durabilityOff: true });
        let shape: SourceShape;
        let sourceBytes: number;
        let sourceVersion: string;
        let expected: string;
        let sourceRows: number;
        let dumpVersion: string;
        try {
            say(`source: fixture schema and sample, ${flags.rows} documents and what scales with them (generating)`);
            const t0 = performance.now();
            shape = await buildRestoreSource(source.clientConfig, source.sqlalchemyUrl, flags.rows, say);
            say(`source generated in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
            sourceBytes = Number(await queryScalar(source.clientConfig, "SELECT pg_database_size(current_database())"));
            ({ version: sourceVersion, signature: expected, rows: sourceRows } = await contents(source.clientConfig));
            dumpVersion = (await run("pg_dump", ["--version"])).stdout.trim();
            say(`source holds ${expected}`);
            const t1 = performance.now();
            const dumped = await run("pg_dump", ["-F", "c", "-f", dump], { env: { ...process.env, ...source.libpqEnv } });
            if (dumped.code !== 0) throw new Error(`pg_dump failed (exit ${dumped.code}):\n${tail(dumped.stderr)}`);
            say(`pg_dump -F c (${dumpVersion}): ${((performance.now() - t1) / 1000).toFixed(1)} s`);
        } finally {
            await source.stop();
        }
        const dumpBytes = fs.statSync(dump).size;
        say(`database ${gib(sourceBytes)}, dump ${gib(dumpBytes)} (${dumpBytes} bytes)`);

        const runs: RunFigures[] = [];
        for (let round = 1; round <= flags.rounds; round++) {
            const order = round % 2 === 1 ? (["drill", "runbook"] as const) : (["runbook", "drill"] as const);
            for (const side of order) {
                const figures = side === "drill" ? await drillRun(round, workDir, dump, expected) : await runbookRun(round, image, dump, expected);
                runs.push(figures);
                const parts = side === "drill" ? ` (drill's "load" step ${secs(figures.loadStep)}, of which pg_restore ${secs(figures.pgRestore)})` : "";
                say(`round ${round}/${flags.rounds}: ${side} ${secs(figures.seconds)}${parts}; ${figures.matches ? "same tables, rows and indexes as the source" : "DIFFERS from the source"}; load average ${loadAverage()}`);
            }
        }

        const of = (side: RunFigures["side"]) => runs.filter((r) => r.side === side);
        const drillMedian = median(of("drill").map((r) => r.seconds));
        const runbookMedian = median(of("runbook").map((r) => r.seconds));
        const drillVersion = of("drill")[0].version;
        const runbookVersion = of("runbook")[0].version;
        const lines = [
            "",
            `restore of one pg_dump -F c: dump ${gib(dumpBytes)} (${dumpBytes} bytes) of a ${gib(sourceBytes)} database`,
            `(${shape.documents} documents, ${shape.events} events, ${shape.attachments} attachments, ${shape.users} users, ${shape.embeddings} embeddings, ${FIXTURE_ROWS.datasets} datasets, ${FIXTURE_ROWS.models} reranker models; ${sourceRows} rows in all), made by ${dumpVersion} from PostgreSQL ${sourceVersion}`,
            `source: ${expected}`,
            `drill:   protea-drill-db restore-dump --dump FILE --jobs ${flags.jobs} (PROTEA_DB_URL), into a fresh cluster from protea-drill-db start (durability off): PostgreSQL ${drillVersion}`,
            `runbook: docker exec -i ${CONTAINER} pg_restore -U protea -d protea < FILE, into a fresh container of ${image} (default settings): PostgreSQL ${runbookVersion}`,
            drillVersion.split(".")[0] !== runbookVersion.split(".")[0]
                ? `NOTE: the servers' versions differ (drill ${drillVersion}, runbook ${runbookVersion}; production runs pgvector/pgvector:pg16): the comparison includes the server version`
                : `both servers run PostgreSQL ${drillVersion}`,
            `only the restore command is timed; rounds alternate which side goes first; ${runs.every((r) => r.matches) ? "every restore has the source's tables, row counts and indexes" : "SOME RESTORES DIFFER FROM THE SOURCE (see the runs)"}`,
            `machine: ${machineLine(loadBefore)}`,
            "",
            table([
                ["round", "side", "restore", "drill's \"load\" step", "of which pg_restore", "CPU busy (core-s of what was there)", "as the source"],
                ...runs.map((r) => [
                    String(r.round),
                    r.side,
                    secs(r.seconds),
                    secs(r.loadStep),
                    secs(r.pgRestore),
                    `${r.busy.used.toFixed(0)} of ${r.busy.available.toFixed(0)} (${((100 * r.busy.used) / r.busy.available).toFixed(0)} %)`,
                    r.matches ? "yes" : "NO",
                ]),
            ]),
            "",
            `median: drill ${secs(drillMedian)}, runbook ${secs(runbookMedian)} over ${flags.rounds} round(s); drill/runbook ${(drillMedian / runbookMedian).toFixed(2)}x (target <= 0.60x)`,
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
    } finally {
        await engine.stop();
    }
}

main().catch((err: Error) => {
    say(err.message);
    process.exit(1);
});
