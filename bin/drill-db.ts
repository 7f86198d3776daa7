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
import { parseArgs } from "node:util";
import { databaseFromEnvironment } from "../lib/database";
import { libpqEnvironment } from "../lib/databaseUrl";
import { resolveDrillPath } from "../lib/drillConfig";
import { clusterLocation, relocatedClusterDir, startPostgresCluster, stopClusterInDir } from "../lib/postgresCluster";
import { run, runShell, tail } from "../lib/processes";
import { inDirectory, quote } from "../lib/shell";

const HELP = `usage: drill-db <command> [options]

  start          initdb + pg_ctl a detached cluster, durability off (a throwaway clone)
                   --state-dir DIR [--relocatable] --port N   (password in DRILL_DB_PASSWORD)
                   --relocatable: when the server's OS user cannot reach DIR's
                   parent, use a private folder under /var/tmp named after DIR
  stop           stop that cluster and remove its folder
                   --state-dir DIR [--relocatable]
  load-sample    alembic upgrade to the expected head, then generate sample rows
                   --app-dir DIR --alembic CMD --seed CMD --expected-head REV
                   --datasets N --models M --embedding-rows R     (PROTEA_DB_URL)
  restore-dump   pg_restore -j N a -F c dump into the database
                   --dump FILE --jobs N                           (PROTEA_DB_URL)`;

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

async function restoreDump(values: Values): Promise<unknown> {
    const database = databaseFromEnvironment();
    const dump = resolveDrillPath(option(values, "dump"));
    if (!fs.existsSync(dump)) throw new Error(`dump ${dump} does not exist; check drill:sourceDump`);
    const bytes = fs.statSync(dump).size;
    say(`pg_restore -j ${values.jobs} ${dump} (${(bytes / 2 ** 20).toFixed(1)} MiB)`);
    const started = Date.now();
    const result = await run("pg_restore", ["-j", option(values, "jobs"), "--no-owner", "-d", database.database, dump], {
        env: { ...process.env, ...libpqEnvironment(database) },
    });
    if (result.code !== 0) throw new Error(`pg_restore failed (exit ${result.code}):\n${tail(result.stderr)}`);
    return { source: "dump", dumpBytes: bytes, seconds: (Date.now() - started) / 1000 };
}

const COMMANDS: Record<string, (values: Values) => Promise<unknown>> = {
    start,
    stop,
    "load-sample": loadSample,
    "restore-dump": restoreDump,
};

async function main(argv: string[]): Promise<number> {
    const [name, ...rest] = argv;
    const command = name ? COMMANDS[name] : undefined;
    if (!command) {
        process.stdout.write(`${HELP}\n`);
        return name === "--help" || name === "-h" ? 0 : 2;
    }
    const names = ["state-dir", "port", "app-dir", "alembic", "seed", "expected-head", "datasets", "models", "embedding-rows", "dump", "jobs"];
    const options = { ...Object.fromEntries(names.map((n) => [n, { type: "string" as const }])), relocatable: { type: "boolean" as const } };
    const { values } = parseArgs({ args: rest, options });
    process.stdout.write(`${JSON.stringify(await command(values as Values))}\n`);
    return 0;
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
        say(err.message);
        process.exit(1);
    },
);
