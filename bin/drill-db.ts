/**
 * The drill's throwaway database, one subcommand per step; the DrillDatabase
 * component's commands call it. Secrets come from the environment only:
 * DRILL_DB_PASSWORD for `start`, PROTEA_DB_URL for the rest. The result is one
 * JSON line on stdout; progress goes to stderr.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { databaseFromEnvironment } from "../lib/database";
import { libpqEnvironment } from "../lib/databaseUrl";
import { startPostgresCluster, stopClusterInDir } from "../lib/postgresCluster";
import { run, runShell, tail } from "../lib/processes";
import { inDirectory, quote } from "../lib/shell";

const HELP = `usage: drill-db <command> [options]

  start          initdb + pg_ctl a detached cluster, durability off (a throwaway clone)
                   --state-dir DIR --port N          (password in DRILL_DB_PASSWORD)
  stop           stop that cluster and remove DIR    --state-dir DIR
  load-sample    alembic upgrade to the expected head, then generate sample rows
                   --app-dir DIR --alembic CMD --seed CMD --expected-head REV
                   --datasets N --models M --embedding-rows R     (PROTEA_DB_URL)
  restore-dump   pg_restore -j N a -F c dump into the database
                   --dump FILE --jobs N                           (PROTEA_DB_URL)`;

const say = (line: string) => process.stderr.write(`drill-db: ${line}\n`);

function option(values: Record<string, string | undefined>, name: string): string {
    const value = values[name];
    if (!value) throw new Error(`missing --${name}\n\n${HELP}`);
    return value;
}

async function start(values: Record<string, string | undefined>): Promise<unknown> {
    const password = process.env.DRILL_DB_PASSWORD;
    if (!password) throw new Error("DRILL_DB_PASSWORD is not set (the drill stack passes drill:password in it)");
    const started = Date.now();
    const cluster = await startPostgresCluster({
        stateDir: option(values, "state-dir"),
        port: Number(option(values, "port")),
        password,
        durabilityOff: true,
        detached: true,
        log: say,
    });
    return { port: cluster.port, seconds: (Date.now() - started) / 1000 };
}

async function stop(values: Record<string, string | undefined>): Promise<unknown> {
    await stopClusterInDir(option(values, "state-dir"), { log: say });
    return { stopped: true };
}

async function shellStep(what: string, command: string): Promise<void> {
    const result = await runShell(command, { env: process.env });
    process.stderr.write(result.stderr);
    if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${tail(result.stderr || result.stdout)}`);
}

async function loadSample(values: Record<string, string | undefined>): Promise<unknown> {
    databaseFromEnvironment(); // fails early, naming PROTEA_DB_URL, when it is missing
    const appDir = option(values, "app-dir");
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

async function restoreDump(values: Record<string, string | undefined>): Promise<unknown> {
    const database = databaseFromEnvironment();
    const dump = option(values, "dump");
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

const COMMANDS: Record<string, (values: Record<string, string | undefined>) => Promise<unknown>> = {
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
    const { values } = parseArgs({ args: rest, options: Object.fromEntries(names.map((n) => [n, { type: "string" as const }])) });
    process.stdout.write(`${JSON.stringify(await command(values as Record<string, string | undefined>))}\n`);
    return 0;
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
        say(err.message);
        process.exit(1);
    },
);
