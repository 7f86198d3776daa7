/**
 * The rollout's gates and probes, one subcommand each. The Pulumi program's
 * commands call it; an operator can run it by hand (`npm run rollout -- …`)
 * with PROTEA_DB_URL in the environment. Progress goes to stderr; the result
 * is one JSON line on stdout. A failed gate exits 1 with the reason.
 */
import { parseArgs } from "node:util";
import { alembicRevisions, judgeRevisions } from "../lib/alembic";
import { takeBackup } from "../lib/backup";
import type { NewColumn, PgAccess } from "../lib/config";
import { databaseFromEnvironment, withDatabase } from "../lib/database";
import { runProbes } from "../lib/probes";
import { columnStates, nullCounts, parityReport, schemaMismatches } from "../lib/schemaChecks";

const HELP = `usage: rollout <command> [options]   (PROTEA_DB_URL must hold the database URL)

commands:
  preflight       the database answers; alembic current = --expected-head and the
                  checkout's head = --target-revision
                    --app-dir DIR --alembic CMD --expected-head REV --target-revision REV
  verify-schema   every new column and index is present (or absent)
                    --expect present|absent --columns JSON
  backup          pg_dump -F c to <dir>/<label>-<UTC>.dump, verified with pg_restore --list
                    --dir DIR --label LABEL --access url|docker-exec
                    [--container NAME --db-user USER --db-name DB]
  verify-backfill no NULL left in any new column; parity of the latest rows
                    --columns JSON --parity-sample N
  probe           the dry run, read-only: database size, backup room, alembic
                  current/heads and the gate's verdict, pending SQL (alembic
                  --sql) and its lock-safety reading, the backfill's --dry-run;
                  always exits 0, a failed probe is reported in the JSON
                    --app-dir DIR --alembic CMD --backfill CMD --expected-head REV
                    --target-revision REV --backup-dir DIR --columns JSON

--columns is a JSON list of {"table","column","index","legacyColumn"}.`;

class GateFailure extends Error {}

const say = (line: string) => process.stderr.write(`${line}\n`);
const result = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

function required(values: Record<string, unknown>, name: string): string {
    const value = values[name];
    if (typeof value !== "string" || value === "") throw new GateFailure(`missing --${name}\n\n${HELP}`);
    return value;
}

function columnsOption(values: Record<string, unknown>): NewColumn[] {
    return JSON.parse(required(values, "columns")) as NewColumn[];
}

async function preflight(values: Record<string, unknown>): Promise<void> {
    const database = databaseFromEnvironment();
    const serverVersion = await withDatabase(database, async (client) => (await client.query("SHOW server_version")).rows[0].server_version as string);
    say(`preflight: database ${database.database} at ${database.host}:${database.port} answers (PostgreSQL ${serverVersion})`);
    const appDir = required(values, "app-dir");
    const alembic = required(values, "alembic");
    const current = await alembicRevisions(alembic, appDir, "current", process.env);
    const heads = await alembicRevisions(alembic, appDir, "heads", process.env);
    const verdict = judgeRevisions(current, heads, required(values, "expected-head"), required(values, "target-revision"));
    say(`preflight: ${verdict.message}`);
    if (!verdict.ok) throw new GateFailure(`preflight gate: ${verdict.message}`);
    result({ serverVersion, current: verdict.current, heads: verdict.heads });
}

async function verifySchema(values: Record<string, unknown>): Promise<void> {
    const expect = required(values, "expect");
    if (expect !== "present" && expect !== "absent") throw new GateFailure("--expect must be present or absent");
    const states = await withDatabase(databaseFromEnvironment(), (client) => columnStates(client, columnsOption(values)));
    const problems = schemaMismatches(states, expect);
    if (problems.length > 0) throw new GateFailure(`schema check: expected every new column and index ${expect}, but ${problems.join("; ")}`);
    say(`schema check: ${states.map((s) => `${s.table}.${s.column} + ${s.index}`).join(", ")} ${expect}`);
    result({ expect, states });
}

async function backup(values: Record<string, unknown>): Promise<void> {
    const access = required(values, "access") as PgAccess;
    if (access !== "url" && access !== "docker-exec") throw new GateFailure("--access must be url or docker-exec");
    const database = access === "url" ? databaseFromEnvironment() : { host: "", port: 0, user: "", database: "" };
    const target = {
        access,
        database,
        container: String(values.container ?? "protea-postgres-1"),
        dbUser: String(values["db-user"] ?? "protea"),
        dbName: String(values["db-name"] ?? "protea"),
    };
    result(await takeBackup(target, required(values, "dir"), required(values, "label"), say));
}

async function verifyBackfill(values: Record<string, unknown>): Promise<void> {
    const columns = columnsOption(values);
    const sample = Number(required(values, "parity-sample"));
    const { counts, parity } = await withDatabase(databaseFromEnvironment(), async (client) => ({
        counts: await nullCounts(client, columns),
        parity: await parityReport(client, columns, sample),
    }));
    const left = counts.filter((c) => c.nulls > 0);
    for (const c of counts) say(`verification: ${c.table}.${c.column}: ${c.nulls} NULL of ${c.rows} rows`);
    for (const p of parity) say(`verification: parity ${p.table}: ${p.matching} of the latest ${p.sampled} rows have matching legacy and v2 values`);
    if (left.length > 0) {
        throw new GateFailure(`verification gate: ${left.map((c) => `${c.table} has ${c.nulls} rows with ${c.column} IS NULL`).join("; ")}; re-run the backfill (pulumi up) before resuming writers`);
    }
    result({ nulls: counts, parity });
}

async function probe(values: Record<string, unknown>): Promise<void> {
    const report = await runProbes(
        {
            appDir: required(values, "app-dir"),
            alembic: required(values, "alembic"),
            backfill: required(values, "backfill"),
            expectedHead: required(values, "expected-head"),
            targetRevision: required(values, "target-revision"),
            backupDir: required(values, "backup-dir"),
            newColumns: columnsOption(values),
        },
        process.env,
        say,
    );
    say(`probe: done in ${report.millis} ms`);
    result(report);
}

const COMMANDS: Record<string, (values: Record<string, unknown>) => Promise<void>> = {
    preflight,
    "verify-schema": verifySchema,
    backup,
    "verify-backfill": verifyBackfill,
    probe,
};

async function main(argv: string[]): Promise<number> {
    const [name, ...rest] = argv;
    if (!name || name === "--help" || name === "-h" || name === "help") {
        process.stdout.write(`${HELP}\n`);
        return name ? 0 : 2;
    }
    const command = COMMANDS[name];
    if (!command) {
        say(`rollout: unknown command "${name}"\n\n${HELP}`);
        return 2;
    }
    const { values } = parseArgs({
        args: rest,
        options: {
            "app-dir": { type: "string" }, alembic: { type: "string" }, "expected-head": { type: "string" },
            "target-revision": { type: "string" }, expect: { type: "string" }, columns: { type: "string" },
            dir: { type: "string" }, label: { type: "string" }, access: { type: "string" }, container: { type: "string" },
            "db-user": { type: "string" }, "db-name": { type: "string" }, "parity-sample": { type: "string" },
            backfill: { type: "string" }, "backup-dir": { type: "string" },
        },
    });
    await command(values);
    return 0;
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
        say(err instanceof GateFailure ? err.message : `rollout: ${err.message}`);
        process.exit(1);
    },
);
