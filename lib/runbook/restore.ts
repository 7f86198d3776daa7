/**
 * The runbook's last resort when the rollback itself fails: drop schema
 * public, restore the pre-flight dump, `alembic stamp` the expected head,
 * then check the result. All or nothing:
 * - before anything is dropped, the dump's SHA-256 must equal the one
 *   recorded when it was taken, and `pg_restore --list` must read it;
 * - the drop, the restore and putting schema public's owner, privileges and
 *   comment back run in ONE transaction (`pg_restore -f -` piped into psql,
 *   COMMIT sent only once pg_restore has finished cleanly): a restore that
 *   fails or is killed part-way leaves the database exactly as it was;
 * - it holds the database's rollout lock, so no rollout runs meanwhile.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import type { Client } from "pg";
import { currentRevisions } from "./alembic";
import { readDumpListing, recordedChecksum, sha256OfFile, tocEntries } from "./backup";
import { checkClientTools, clientTool, ClientToolTarget } from "../postgres/clientTools";
import type { RolloutConfig } from "../config/config";
import { applicationEnvironment, completedStepEnvironment, withDatabase } from "../postgres/database";
import { runShell, tail } from "../process/processes";
import { holdRunLock } from "./rolloutLock";
import { columnStates, schemaMismatches } from "../postgres/schemaChecks";
import { inDirectory, quote } from "../process/shell";

export interface RestoreTimings {
    restoreSeconds: number;
    stampSeconds: number;
    totalSeconds: number;
}

export function clientTarget(config: RolloutConfig): ClientToolTarget {
    return { access: config.pgAccess, container: config.container, dbUser: config.dbUser, dbName: config.dbName, database: config.database };
}

export class RestoreRefused extends Error {}

/** Checks a dump can be trusted, before anything changes: its recorded SHA-256, then its table of contents. */
export async function checkDump(target: ClientToolTarget, dumpPath: string, recordedSha256: string | undefined, log: (line: string) => void): Promise<string> {
    if (!fs.existsSync(dumpPath)) throw new RestoreRefused(`dump ${dumpPath} does not exist; pass --dump with the backup to restore; nothing changed`);
    const recorded = recordedSha256 ?? recordedChecksum(dumpPath);
    if (!recorded) {
        throw new RestoreRefused(`no SHA-256 is recorded for ${dumpPath} (not in the stack, no ${dumpPath}.sha256): pass --sha256 <the checksum you trust>; nothing changed`);
    }
    const actual = await sha256OfFile(dumpPath);
    if (actual !== recorded) {
        throw new RestoreRefused(`${dumpPath} is damaged or was changed since it was taken: its SHA-256 is ${actual}, the recorded one ${recorded}; nothing changed. Restore another dump with --dump`);
    }
    log(`restore: ${dumpPath} matches its recorded SHA-256 ${recorded.slice(0, 12)}…`);
    const listing = await readDumpListing(target, dumpPath);
    log(`restore: pg_restore --list reads it (${tocEntries(listing)} entries)`);
    return listing.includes(" SCHEMA - public ") ? "dump-has-public" : "default-public";
}

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Schema public's owner, privileges and comment as SQL that puts them back after it is re-created. */
export async function publicSchemaRestoreSql(client: Client): Promise<string> {
    // Role names as stored (pg_get_userbyid), quoted once here: regrole::text would quote them already.
    const schema = (await client.query(
        `SELECT pg_get_userbyid(n.nspowner) AS owner, obj_description(n.oid, 'pg_namespace') AS comment
           FROM pg_namespace n WHERE n.nspname = 'public'`,
    )).rows[0];
    if (!schema) return "";
    const grants = (await client.query(
        `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type, a.is_grantable
           FROM pg_namespace n, aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a
          WHERE n.nspname = 'public'`,
    )).rows;
    const lines = [`ALTER SCHEMA public OWNER TO ${ident(schema.owner)};`, "REVOKE ALL ON SCHEMA public FROM PUBLIC;"];
    for (const g of grants) lines.push(`GRANT ${g.privilege_type} ON SCHEMA public TO ${g.grantee === null ? "PUBLIC" : ident(g.grantee)}${g.is_grantable ? " WITH GRANT OPTION" : ""};`);
    lines.push(`COMMENT ON SCHEMA public IS ${schema.comment === null ? "NULL" : literal(schema.comment)};`);
    return `${lines.join("\n")}\n`;
}

/**
 * `DROP SCHEMA public CASCADE; CREATE SCHEMA public;` and the dump's contents
 * in one transaction: psql gets BEGIN, the drop, pg_restore's script, the
 * schema's grants, and COMMIT only when pg_restore exited 0. If anything
 * fails, or this process dies, psql ends without COMMIT and PostgreSQL rolls
 * it all back.
 */
async function restoreInOneTransaction(target: ClientToolTarget, dumpPath: string, publicInDump: boolean, schemaSql: string, timeoutMs: number, log: (line: string) => void): Promise<void> {
    const psql = clientTool(target, "psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1"], true);
    // pg_restore only writes the script here (no database): inside the container it reads the dump from stdin.
    const restore =
        target.access === "docker-exec"
            ? { program: "docker", args: ["exec", "-i", target.container, "pg_restore", "-f", "-"], env: {} }
            : { program: "pg_restore", args: ["-f", "-", dumpPath], env: {} };
    const dumpFd = target.access === "docker-exec" ? fs.openSync(dumpPath, "r") : undefined;
    const sqlChild = spawn(psql.program, psql.args, { env: { ...process.env, ...psql.env }, stdio: ["pipe", "pipe", "pipe"] });
    const restoreChild = spawn(restore.program, restore.args, { env: { ...process.env, ...restore.env }, stdio: [dumpFd ?? "ignore", "pipe", "pipe"] });
    let sqlErr = "";
    let restoreErr = "";
    sqlChild.stderr.on("data", (d) => (sqlErr += d));
    sqlChild.stdout.resume();
    restoreChild.stderr!.on("data", (d) => (restoreErr += d));
    const timer = setTimeout(() => {
        log(`restore: past its timeout (rollout:stepTimeout); stopping it, nothing is committed`);
        restoreChild.kill("SIGKILL");
        sqlChild.kill("SIGKILL");
    }, timeoutMs);
    try {
        sqlChild.stdin.on("error", () => undefined);
        sqlChild.stdin.write(`BEGIN;\nDROP SCHEMA public CASCADE;\n${publicInDump ? "" : "CREATE SCHEMA public;\n"}`);
        restoreChild.stdout!.pipe(sqlChild.stdin, { end: false });
        const restoreCode = await new Promise<number>((resolve) => restoreChild.on("close", (code) => resolve(code ?? 1)));
        if (restoreCode !== 0) {
            sqlChild.kill("SIGKILL");
            await new Promise((resolve) => sqlChild.on("close", resolve));
            throw new Error(`pg_restore failed (exit ${restoreCode}); nothing was committed, the database is as it was:\n${tail(restoreErr)}`);
        }
        sqlChild.stdin.end(`${schemaSql}COMMIT;\n`);
        const sqlCode = await new Promise<number>((resolve) => sqlChild.on("close", (code) => resolve(code ?? 1)));
        if (sqlCode !== 0) throw new Error(`the restore's transaction failed (psql exit ${sqlCode}); it rolled back, the database is as it was:\n${tail(sqlErr)}`);
    } finally {
        clearTimeout(timer);
        if (dumpFd !== undefined) fs.closeSync(dumpFd);
    }
}

/** The data is back (committed), but `alembic stamp` failed: the state must still learn it, and the operator what is left. */
export class StampFailed extends Error {
    constructor(
        readonly timings: RestoreTimings,
        message: string,
    ) {
        super(message);
    }
}

export async function restoreFromDump(
    config: RolloutConfig,
    dbUrl: string,
    dump: { path: string; sha256?: string },
    stack: string,
    log: (line: string) => void,
): Promise<RestoreTimings> {
    const started = Date.now();
    const target = clientTarget(config);
    const serverVersionNum = await withDatabase(config.database, async (client) => Number((await client.query("SHOW server_version_num")).rows[0].server_version_num));
    const tools = await checkClientTools(target, process.env, serverVersionNum);
    if (!tools.ok) throw new RestoreRefused(`${tools.message}; nothing changed`);
    log(`restore: ${tools.message}`);
    const publicInDump = (await checkDump(target, dump.path, dump.sha256, log)) === "dump-has-public";

    const lock = await holdRunLock(config.database, stack, "restore");
    let restoreSeconds: number;
    try {
        const schemaSql = await publicSchemaRestoreSql(lock.client);
        log(`restore: DROP SCHEMA public CASCADE and pg_restore of ${dump.path}, in one transaction`);
        const mark = Date.now();
        await restoreInOneTransaction(target, dump.path, publicInDump, schemaSql, config.stepTimeoutMs, log);
        restoreSeconds = (Date.now() - mark) / 1000;
    } finally {
        await lock.release();
    }
    log(`restore: the data of ${dump.path} is restored and committed`);

    // The application gets its URL as configured, in its own variable (rollout:dbUrlEnv).
    const mark = Date.now();
    const env = applicationEnvironment(completedStepEnvironment(config, dbUrl));
    const stampCommand = `${config.alembic} stamp ${quote(config.expectedHead)}`;
    const stamp = await runShell(inDirectory(config.appDir, stampCommand), { env });
    const timings = () => ({ restoreSeconds, stampSeconds: (Date.now() - mark) / 1000, totalSeconds: (Date.now() - started) / 1000 });
    const current = await withDatabase(config.database, (client) => currentRevisions(client, config.alembicVersionTable));
    if (stamp.code !== 0) {
        const reads = current.length === 1 && current[0] === config.expectedHead ? `alembic's version table already reads ${config.expectedHead} (the dump's own)` : `alembic's version table reads ${current.join(", ") || "nothing"}`;
        // Its output first; the last line is the verdict and what is left to do.
        throw new StampFailed(
            timings(),
            `\`${stampCommand}\` printed:\n${tail(stamp.stderr || stamp.stdout)}\n` +
                `the data is restored from ${dump.path} (committed); \`${stampCommand}\` failed (exit ${stamp.code}); ${reads}. ` +
                `Fix the application's alembic (rollout:alembic, rollout:appDir, rollout:dbUrlEnv), then run in ${config.appDir}, with the URL in ${config.dbUrlEnv}: ${stampCommand}`,
        );
    }
    if (current.length !== 1 || current[0] !== config.expectedHead) {
        throw new StampFailed(timings(), `the data is restored from ${dump.path} (committed), but after \`${stampCommand}\` alembic's version table (rollout:alembicVersionTable ${config.alembicVersionTable}) reads ${current.join(", ") || "nothing"}, not ${config.expectedHead}`);
    }
    const problems = schemaMismatches(await withDatabase(config.database, (client) => columnStates(client, config.newColumns)), "absent");
    if (problems.length > 0) throw new StampFailed(timings(), `the data is restored from ${dump.path} (committed), but ${problems.join("; ")}: the dump was taken after the migration?`);
    log(`restore: alembic current = ${config.expectedHead}; the new columns and indexes are absent`);
    return timings();
}
