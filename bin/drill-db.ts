/**
 * The drill's throwaway database, one subcommand per step; the DrillDatabase
 * component's commands call it. Secrets come from the environment only:
 * DRILL_DB_PASSWORD for `start`, PROTEA_DB_URL for the rest. The result is one
 * JSON line on stdout; progress goes to stderr. Paths arrive as configured
 * ("~" is the home, relative is from the project root) and are resolved
 * against this tool's own checkout, so stored commands name no folder of it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { readDumpListing } from "../lib/runbook/backup";
import { databaseFromEnvironment, environmentPasswordForms, withDatabase } from "../lib/postgres/database";
import { installOutputScrubber, secretForms } from "../lib/process/scrub";
import { libpqEnvironment, LibpqSettings } from "../lib/config/databaseUrl";
import { resolveDrillPath } from "../lib/config/drillConfig";
import { tableChecksums, writeTablesSnapshot } from "../lib/drill/drillReport";
import { drillRestoreSettings, runDrillRestore } from "../lib/drill/drillRestore";
import { startPostgresCluster, stopClusterInDir } from "../lib/postgres/cluster/cluster";
import { clusterLocation, relocatedClusterDir } from "../lib/postgres/cluster/clusterLayout";
import { loadDumpWithPristine, pristineCommand, startFromDump } from "../lib/drill/drillPristine";
import { run, runShell, tail } from "../lib/process/processes";
import { inDirectory, quote } from "../lib/process/shell";
import { cliCommandsHelp, CliSpec, cliSpec, readCli } from "../lib/process/cliOptions";

/** The cluster's place, as start, stop, start-from-dump and load-dump take it. */
const STATE_DIR = { type: "string", value: "DIR", required: true, description: 'the cluster\'s folder ("~" is the home, relative is from the project root)' } as const;
const RELOCATABLE = { type: "boolean", description: "when the server's OS user cannot reach DIR's parent, use a private folder under /var/tmp named after DIR" } as const;
const PORT = { type: "string", value: "N", required: true, description: "the cluster's port on 127.0.0.1" } as const;
const DUMP = { type: "string", value: "FILE", required: true, description: "the dump (pg_dump -F c)" } as const;
const JOBS = { type: "string", value: "N", required: true, description: "pg_restore -j: parallel restore jobs" } as const;

/** Each subcommand's flags; `drill-db <command> --help` prints its help. */
const SUBCOMMANDS = {
    start: cliSpec({
        usage: "drill-db start",
        description: "initdb + pg_ctl a detached cluster, durability off (a throwaway clone); its password in DRILL_DB_PASSWORD.",
        options: { "state-dir": STATE_DIR, relocatable: RELOCATABLE, port: PORT },
    }),
    stop: cliSpec({ usage: "drill-db stop", description: "stop that cluster and remove its folder", options: { "state-dir": STATE_DIR, relocatable: RELOCATABLE } }),
    "load-sample": cliSpec({
        usage: "drill-db load-sample",
        description: "alembic upgrade to the expected head, then generate sample rows (the database in PROTEA_DB_URL)",
        options: {
            "app-dir": { type: "string", value: "DIR", required: true, description: "the application's checkout, where alembic and the seed run" },
            alembic: { type: "string", value: "CMD", required: true, description: "the command that runs alembic" },
            seed: { type: "string", value: "CMD", required: true, description: "the command that generates the sample rows" },
            "expected-head": { type: "string", value: "REV", required: true, description: "the revision to upgrade to" },
            datasets: { type: "string", value: "N", required: true, description: "datasets to generate" },
            models: { type: "string", value: "M", required: true, description: "reranker models to generate" },
            "embedding-rows": { type: "string", value: "R", required: true, description: "rows of the bulk embedding table to generate" },
        },
    }),
    "restore-dump": cliSpec({
        usage: "drill-db restore-dump",
        description: "pg_restore -j N a -F c dump into the database (PROTEA_DB_URL)",
        options: { dump: DUMP, jobs: JOBS },
    }),
    "start-from-dump": cliSpec({
        usage: "drill-db start-from-dump",
        description: `start, for a drill from --dump: from a copy of the dump's pristine (keyed by its
SHA-256) when one was kept, else as start (password in DRILL_DB_PASSWORD)`,
        options: { "state-dir": STATE_DIR, relocatable: RELOCATABLE, port: PORT, dump: DUMP },
    }),
    "load-dump": cliSpec({
        usage: "drill-db load-dump",
        description: `after start-from-dump: nothing when it cloned the pristine; else restore-dump,
then keep a pristine copy for the next drill (PROTEA_DB_URL)`,
        options: { "state-dir": STATE_DIR, relocatable: RELOCATABLE, dump: DUMP, jobs: JOBS },
    }),
    pristine: cliSpec({
        usage: "drill-db pristine",
        description: "the kept pristine copies (.state/drill-pristine): list them (the default), drop those of a dump, or prune those whose dump is gone",
        options: {
            list: { type: "boolean", description: "list them, as JSON (the default)" },
            drop: { type: "boolean", description: "drop the pristine copies of --dump FILE" },
            prune: { type: "boolean", description: "drop the pristine copies whose dump is gone or changed" },
            dump: { type: "string", value: "FILE", description: "with --drop: the dump whose copies go" },
        },
    }),
    "snapshot-tables": cliSpec({
        usage: "drill-db snapshot-tables",
        description: "each table's row count and checksum, as JSON in FILE (PROTEA_DB_URL)",
        options: {
            out: { type: "string", value: "FILE", required: true, description: "the JSON file" },
            remove: { type: "boolean", description: "delete FILE instead" },
        },
    }),
};

const HELP = cliCommandsHelp(
    "drill-db <command> [options]",
    `The drill's throwaway database, one subcommand per step (the DrillDatabase
component's commands call it). Secrets come from the environment only:
DRILL_DB_PASSWORD for start, PROTEA_DB_URL for the rest. The result is one JSON
line on stdout; progress goes to stderr.`,
    SUBCOMMANDS,
);

const say = (line: string) => process.stderr.write(`drill-db: ${line}\n`);

function option(values: Record<string, string | boolean | undefined>, name: string): string {
    const value = values[name];
    if (typeof value !== "string" || !value) throw new Error(`missing --${name}\n\n${HELP}`);
    return value;
}

type Values = Record<string, string | boolean | undefined>;

/** Where the cluster lives: --state-dir resolved here, moved when --relocatable and unreachable. */
function location(values: Values) {
    return clusterLocation(resolveDrillPath(option(values, "state-dir")), { relocatable: values.relocatable === true, prefix: "protea-drill-" });
}

async function start(values: Values): Promise<unknown> {
    const password = process.env.DRILL_DB_PASSWORD;
    if (!password) throw new Error("DRILL_DB_PASSWORD is not set (the drill stack passes drill:password in it)");
    const started = Date.now();
    const where = location(values);
    if (where.relocated) say(`OS user postgres cannot reach ${path.dirname(where.preferred)}: the cluster goes to ${where.dir}`);
    const cluster = await startPostgresCluster({
        stateDir: where.dir,
        port: Number(option(values, "port")),
        password,
        durabilityOff: true,
        detached: true,
        log: say,
    });
    return { port: cluster.port, relocated: where.relocated, seconds: (Date.now() - started) / 1000 };
}

async function stop(values: Values): Promise<unknown> {
    const preferred = resolveDrillPath(option(values, "state-dir"));
    // Both places a relocatable cluster may be, in case reachability changed since it started.
    const dirs = values.relocatable === true ? [preferred, relocatedClusterDir(preferred, "protea-drill-")] : [preferred];
    for (const dir of dirs) await stopClusterInDir(dir, { log: say });
    return { stopped: true };
}

async function shellStep(what: string, command: string): Promise<void> {
    const result = await runShell(command, { env: process.env });
    process.stderr.write(result.stderr);
    if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${tail(result.stderr || result.stdout)}`);
}

async function loadSample(values: Values): Promise<unknown> {
    databaseFromEnvironment(); // fails early, naming PROTEA_DB_URL, when it is missing
    const appDir = resolveDrillPath(option(values, "app-dir"));
    const started = Date.now();
    await shellStep("alembic upgrade", inDirectory(appDir, `${option(values, "alembic")} upgrade ${quote(option(values, "expected-head"))}`));
    const seed = [
        option(values, "seed"),
        "--datasets", quote(option(values, "datasets")),
        "--reranker-models", quote(option(values, "models")),
        "--embedding-rows", quote(option(values, "embedding-rows")),
    ].join(" ");
    say(`generating ${values.datasets} datasets, ${values.models} reranker models, ${values["embedding-rows"]} embedding rows`);
    await shellStep("sample generation", inDirectory(appDir, seed));
    return { source: "sample", seconds: (Date.now() - started) / 1000 };
}

/** The way out when this server lacks pgvector (Debian 12 does not package it) and the dump needs it. */
const VECTOR_HINT =
    'rehearse with `npm run drill -- --engine docker --image <tag>` on a locally built pgvector image (drill:image; README, "Rehearsing on a local pgvector image")';

/** Fails before anything is restored when the dump creates the `vector` extension and this server cannot. */
async function checkVectorExtension(database: LibpqSettings, dump: string): Promise<void> {
    // The host's pg_restore (url access): the container fields are docker-exec's.
    const listing = await readDumpListing({ access: "url", container: "", dbUser: "", dbName: "", database }, dump);
    if (!/ EXTENSION - vector\b/.test(listing)) return;
    const available = await withDatabase(database, async (client) => (await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).rowCount! > 0);
    if (!available) throw new Error(`${dump} needs the "vector" extension (pgvector), which the local engine's PostgreSQL does not have: ${VECTOR_HINT}`);
}

async function restoreDump(values: Values): Promise<unknown> {
    const database = databaseFromEnvironment();
    const dump = resolveDrillPath(option(values, "dump"));
    if (!fs.existsSync(dump)) throw new Error(`dump ${dump} does not exist; check drill:sourceDump`);
    await checkVectorExtension(database, dump);
    const jobs = Number(option(values, "jobs"));
    if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs must be a whole number of at least 1, got "${values.jobs}"`);
    const bytes = fs.statSync(dump).size;
    // lib/drill/drillRestore.ts: pg_restore -j from the file, with restore-sized session settings.
    say(`pg_restore -j ${jobs} ${dump} (${(bytes / 2 ** 20).toFixed(1)} MiB; ${drillRestoreSettings(jobs)})`);
    const started = Date.now();
    const result = await runDrillRestore({ database, dump, jobs });
    if (result.code !== 0) {
        // Also when the dump has no EXTENSION entry (pg_dump -n public) but uses the type.
        const needsVector = /extension\/vector\.control|extension "vector"|type "(public\.)?vector" does not exist/.test(result.stderr);
        throw new Error(`pg_restore failed (exit ${result.code})${needsVector ? `; the dump needs the "vector" extension: ${VECTOR_HINT}` : ""}:\n${tail(result.stderr)}`);
    }
    return { source: "dump", dumpBytes: bytes, seconds: (Date.now() - started) / 1000 };
}

async function snapshotTables(values: Values): Promise<unknown> {
    const file = resolveDrillPath(option(values, "out"));
    if (values.remove === true) {
        fs.rmSync(file, { force: true });
        return { removed: true };
    }
    const tables = await withDatabase(databaseFromEnvironment(), tableChecksums);
    writeTablesSnapshot(file, tables);
    return { tables: tables.length, rows: tables.reduce((sum, t) => sum + t.rows, 0) };
}

const COMMANDS: Record<keyof typeof SUBCOMMANDS, (values: Values) => Promise<unknown>> = {
    start,
    stop,
    "load-sample": loadSample,
    "restore-dump": restoreDump,
    "snapshot-tables": snapshotTables,
    "start-from-dump": (values) => startFromDump(values, { location, start, say }),
    "load-dump": (values) => loadDumpWithPristine(values, { location, restoreDump, say }),
    pristine: (values) => pristineCommand(values, say),
};

async function main(argv: string[]): Promise<number> {
    const [name, ...rest] = argv;
    if (!name || !Object.hasOwn(SUBCOMMANDS, name)) {
        process.stdout.write(`${HELP}\n`);
        return name === "--help" || name === "-h" ? 0 : 2;
    }
    const subcommand = name as keyof typeof SUBCOMMANDS;
    const values: Values = readCli(rest, SUBCOMMANDS[subcommand] as CliSpec);
    installOutputScrubber([...secretForms(process.env.DRILL_DB_PASSWORD), ...environmentPasswordForms()]);
    process.stdout.write(`${JSON.stringify(await COMMANDS[subcommand](values))}\n`);
    return 0;
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
        say(err.message);
        process.exit(1);
    },
);
