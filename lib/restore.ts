/**
 * The runbook's last resort when the rollback itself fails: drop the schema,
 * `pg_restore` the pre-flight dump, `alembic stamp` the expected head, then
 * check the result. The dump is read back with `pg_restore --list` before
 * anything is dropped.
 */
import * as fs from "node:fs";
import { alembicRevisions } from "./alembic";
import { verifyDump } from "./backup";
import { clientTool, ClientToolTarget } from "./clientTools";
import type { RolloutConfig } from "./config";
import { withDatabase } from "./database";
import { sqlalchemyUrl } from "./databaseUrl";
import { run, runShell, tail } from "./processes";
import { columnStates, schemaMismatches } from "./schemaChecks";
import { inDirectory, quote } from "./shell";

export interface RestoreTimings {
    dropSeconds: number;
    pgRestoreSeconds: number;
    stampSeconds: number;
    totalSeconds: number;
}

export function clientTarget(config: RolloutConfig): ClientToolTarget {
    return { access: config.pgAccess, container: config.container, dbUser: config.dbUser, dbName: config.dbName, database: config.database };
}

async function runTool(target: ClientToolTarget, tool: "psql" | "pg_restore", args: string[], stdinFile?: string): Promise<void> {
    const invocation = clientTool(target, tool, args, stdinFile !== undefined);
    const fd = stdinFile !== undefined ? fs.openSync(stdinFile, "r") : undefined;
    try {
        const result = await run(invocation.program, invocation.args, { env: { ...process.env, ...invocation.env }, stdin: fd });
        if (result.code !== 0) {
            throw new Error(`${tool} failed (exit ${result.code}):\n${tail(result.stderr)}`);
        }
    } finally {
        if (fd !== undefined) fs.closeSync(fd);
    }
}

export async function restoreFromDump(config: RolloutConfig, dumpPath: string, log: (line: string) => void): Promise<RestoreTimings> {
    const started = Date.now();
    const target = clientTarget(config);
    if (!fs.existsSync(dumpPath)) throw new Error(`dump ${dumpPath} does not exist; pass --dump with the backup to restore`);
    const entries = await verifyDump(target, dumpPath);
    log(`restore: ${dumpPath} reads back (${entries} entries); dropping schema public`);

    let mark = Date.now();
    await runTool(target, "psql", ["-v", "ON_ERROR_STOP=1", "-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"]);
    const dropSeconds = (Date.now() - mark) / 1000;

    mark = Date.now();
    // A file on the host can be read in parallel; docker exec feeds stdin, which cannot.
    if (target.access === "url") {
        log(`restore: pg_restore -j ${config.restoreJobs} ${dumpPath}`);
        await runTool(target, "pg_restore", ["-j", String(config.restoreJobs), dumpPath]);
    } else {
        log(`restore: docker exec -i ${config.container} pg_restore < ${dumpPath}`);
        await runTool(target, "pg_restore", [], dumpPath);
    }
    const pgRestoreSeconds = (Date.now() - mark) / 1000;

    mark = Date.now();
    const env = { ...process.env, PROTEA_DB_URL: sqlalchemyUrl(config.database) };
    const stamp = await runShell(inDirectory(config.appDir, `${config.alembic} stamp ${quote(config.expectedHead)}`), { env });
    if (stamp.code !== 0) throw new Error(`alembic stamp ${config.expectedHead} failed (exit ${stamp.code}):\n${tail(stamp.stderr || stamp.stdout)}`);
    const stampSeconds = (Date.now() - mark) / 1000;

    const current = await alembicRevisions(config.alembic, config.appDir, "current", env);
    if (current.length !== 1 || current[0] !== config.expectedHead) {
        throw new Error(`after the restore, alembic current is ${current.join(", ") || "(none)"}, not ${config.expectedHead}`);
    }
    const problems = schemaMismatches(await withDatabase(config.database, (client) => columnStates(client, config.newColumns)), "absent");
    if (problems.length > 0) throw new Error(`after the restore, ${problems.join("; ")}: the dump was taken after the migration?`);
    log(`restore: alembic current = ${config.expectedHead}; the new columns and indexes are absent`);
    return { dropSeconds, pgRestoreSeconds, stampSeconds, totalSeconds: (Date.now() - started) / 1000 };
}
