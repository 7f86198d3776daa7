/**
 * The pre-flight backup's `pg_dump -F c` at each gzip compression level the
 * host's pg_dump offers, against the runbook's `pg_dump -F c` with its default
 * compression, on one PROTEA-shaped database (the fixture's schema and sample
 * plus a bulk embedding table; 1,000,000 embedding rows is about 1 GB).
 *
 * For each level: the dump's wall time (every round, levels interleaved and
 * their order rotated per round), its size, that `pg_restore --list` reads it,
 * and the time `pg_restore` takes to load it into a fresh cluster (once per
 * level). Prints every run, the medians and each level's ratio to the
 * default; asserts nothing. Every cluster and folder goes away, also on Ctrl-C.
 *
 * Target: the backup at most 0.5x the runbook's `pg_dump -F c` (default
 * compression) on >= 1 GB, still a custom-format dump pg_restore reads.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { startPostgresCluster } from "../lib/postgres/cluster/cluster";
import { run, tail } from "../lib/process/processes";
import { alembic, EXPECTED_HEAD, expectSuccess, seedSample } from "../test/integration/helpers/fixture";
import { benchFlags, benchHelp, loadAverage, machineLine, median, removeNow, removeOnExit, say, table } from "./common";

const CLI = {
    usage: "bash scripts/with-engine.sh npx ts-node --transpile-only bench/backup.ts",
    description: `pg_dump -F c of a PROTEA-shaped database at the default compression (the
runbook's) and at -Z 0, -Z 1, -Z 3 (and --levels), with each dump's size and
the time pg_restore takes to load it into a fresh cluster (figures only,
asserts nothing).

Needs PostgreSQL 15 client and server binaries and the fixture's venv
(scripts/setup-fixture.sh). Progress goes to stderr ("bench: ..."), the
summary to stdout.`,
    flags: {
        rounds: { default: 2, min: 1, description: "rounds; each dumps once per level, levels interleaved, their order rotated each round" },
        "embedding-rows": {
            default: 300_000,
            min: 0,
            description: "dataset_embedding rows in the source, about 1 KiB each: 1000000 makes a database of about 1 GB; the default, about 350 MB, takes ~15 minutes on 2 cores",
        },
        levels: { default: "0,1,3", value: "LIST", description: "comma-separated gzip levels besides the default (0-9; PostgreSQL 15's pg_dump has gzip only)" },
    },
} as const;
const USAGE = benchHelp(CLI);

const flags = benchFlags(CLI);

const SOURCE = { datasets: 2000, models: 200_000 };
/** "default" is pg_dump without -Z: for -F c in PostgreSQL 15, zlib's default level (6). */
type Level = "default" | number;

const levels: Level[] = (() => {
    const parsed = flags.levels.split(",").filter((s) => s.trim() !== "").map((s) => Number(s.trim()));
    if (parsed.some((n) => !Number.isInteger(n) || n < 0 || n > 9)) {
        process.stderr.write(`--levels must be comma-separated whole numbers 0-9, got "${flags.levels}"\n\n${USAGE}\n`);
        process.exit(2);
    }
    return ["default", ...new Set(parsed)];
})();
const label = (level: Level) => (level === "default" ? "default (-Z 6)" : `-Z ${level}`);
const zArgs = (level: Level) => (level === "default" ? [] : ["-Z", String(level)]);
const secs = (value: number) => (Number.isNaN(value) ? "—" : `${value.toFixed(1)} s`);
const mib = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

interface DumpRun {
    round: number;
    level: Level;
    seconds: number;
    bytes: number;
    tocEntries: number;
}

async function databaseBytes(config: ConstructorParameters<typeof Client>[0]): Promise<number> {
    const client = new Client(config);
    await client.connect();
    try {
        return Number((await client.query("SELECT pg_database_size(current_database()) AS n")).rows[0].n);
    } finally {
        await client.end();
    }
}

async function main(): Promise<void> {
    const loadBefore = loadAverage();
    say(`rounds: ${flags.rounds}; embedding rows: ${flags["embedding-rows"]}; levels: ${levels.map(label).join(", ")}; ${os.cpus().length} cores, load average ${loadBefore}`);
    const workDir = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), "protea-bench-backup-")));
    const dumpVersion = (await run("pg_dump", ["--version"])).stdout.trim();
    const dumpFile = (level: Level) => path.join(workDir, `level-${level}.dump`);

    const source = await startPostgresCluster({ log: say });
    const runs: DumpRun[] = [];
    let sourceBytes: number;
    try {
        say(`source: fixture schema, ${SOURCE.datasets} datasets, ${SOURCE.models} reranker models, ${flags["embedding-rows"]} embedding rows (seeding)`);
        expectSuccess(await alembic(source.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
        const seedArgs = ["--datasets", String(SOURCE.datasets), "--reranker-models", String(SOURCE.models), "--embedding-rows", String(flags["embedding-rows"])];
        const seedStart = performance.now();
        expectSuccess(await seedSample(source.sqlalchemyUrl, seedArgs), "seed");
        await run("psql", ["-q", "-c", "VACUUM ANALYZE"], { env: { ...process.env, ...source.libpqEnv } });
        sourceBytes = await databaseBytes(source.clientConfig);
        say(`source seeded in ${((performance.now() - seedStart) / 1000).toFixed(0)} s: database ${mib(sourceBytes)}`);

        for (let round = 1; round <= flags.rounds; round++) {
            // Rotate the order so no level always runs first (cold caches) or last.
            const shift = (round - 1) % levels.length;
            const order = [...levels.slice(shift), ...levels.slice(0, shift)];
            for (const level of order) {
                const file = dumpFile(level);
                fs.rmSync(file, { force: true });
                const t0 = performance.now();
                const dumped = await run("pg_dump", ["-F", "c", ...zArgs(level), "-f", file], { env: { ...process.env, ...source.libpqEnv } });
                const seconds = (performance.now() - t0) / 1000;
                if (dumped.code !== 0) throw new Error(`pg_dump ${label(level)} failed (exit ${dumped.code}):\n${tail(dumped.stderr)}`);
                const listing = await run("pg_restore", ["--list", file]);
                if (listing.code !== 0) throw new Error(`pg_restore --list cannot read the ${label(level)} dump:\n${tail(listing.stderr)}`);
                const tocEntries = listing.stdout.split("\n").filter((l) => l.trim() !== "" && !l.startsWith(";")).length;
                const bytes = fs.statSync(file).size;
                runs.push({ round, level, seconds, bytes, tocEntries });
                say(`round ${round}/${flags.rounds}: pg_dump -F c ${label(level)}: ${secs(seconds)}, ${mib(bytes)}, pg_restore --list reads ${tocEntries} entries; load average ${loadAverage()}`);
            }
        }
    } finally {
        await source.stop();
    }

    // One restore per level (the last round's dump), each into a fresh cluster with default settings.
    const restores = new Map<Level, number>();
    for (const level of levels) {
        const target = await startPostgresCluster({ log: () => {} });
        try {
            const t0 = performance.now();
            const restored = await run("pg_restore", ["--exit-on-error", "-d", target.database, dumpFile(level)], { env: { ...process.env, ...target.libpqEnv } });
            const seconds = (performance.now() - t0) / 1000;
            if (restored.code !== 0) throw new Error(`pg_restore of the ${label(level)} dump failed (exit ${restored.code}):\n${tail(restored.stderr)}`);
            restores.set(level, seconds);
            say(`pg_restore of the ${label(level)} dump into a fresh cluster: ${secs(seconds)}; load average ${loadAverage()}`);
        } finally {
            await target.stop();
        }
        removeNow(dumpFile(level));
    }

    const of = (level: Level) => runs.filter((r) => r.level === level);
    const med = (level: Level) => median(of(level).map((r) => r.seconds));
    const size = (level: Level) => of(level)[of(level).length - 1].bytes;
    const base = { seconds: med("default"), bytes: size("default"), restore: restores.get("default") ?? NaN };
    const lines = [
        "",
        `pg_dump -F c of a ${mib(sourceBytes)} database (${SOURCE.datasets} datasets, ${SOURCE.models} reranker models, ${flags["embedding-rows"]} embedding rows), ${dumpVersion}`,
        `dump timed by wall clock, ${flags.rounds} round(s), levels interleaved and rotated; restore: pg_restore -d into a fresh cluster (default settings), once per level; every dump read back by pg_restore --list`,
        `machine: ${machineLine(loadBefore)}`,
        "",
        table([
            ["round", "level", "pg_dump", "size", "toc entries"],
            ...runs.map((r) => [String(r.round), label(r.level), secs(r.seconds), `${mib(r.bytes)} (${r.bytes} bytes)`, String(r.tocEntries)]),
        ]),
        "",
        table([
            ["level", "pg_dump (median)", "vs default", "size", "vs default", "pg_restore", "vs default"],
            ...levels.map((level) => {
                const restore = restores.get(level) ?? NaN;
                return [
                    label(level),
                    secs(med(level)),
                    `${(med(level) / base.seconds).toFixed(2)}x`,
                    mib(size(level)),
                    `${(size(level) / base.bytes).toFixed(2)}x`,
                    secs(restore),
                    `${(restore / base.restore).toFixed(2)}x`,
                ];
            }),
        ]),
        "",
        "target: the backup's pg_dump <= 0.50x the default's, on >= 1 GB",
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((err: Error) => {
    say(err.message);
    process.exit(1);
});
