/**
 * The drill's restore of a `pg_dump -F c` file into its throwaway cluster
 * (`protea-drill-db restore-dump`), tuned as PostgreSQL's "Populating a
 * Database" chapter suggests, measured with bench/restore.ts:
 *
 * - `pg_restore -j N` from the file (stdin cannot be read in parallel): data
 *   of several tables, and then their indexes, load at once. With
 *   wal_level=minimal (the drill cluster's durability-off settings),
 *   pg_restore's parallel mode wraps each COPY in a transaction after a
 *   TRUNCATE, so the data is not WAL-logged at all.
 * - Session settings through PGOPTIONS, for pg_restore's connections only: a
 *   large `maintenance_work_mem` (B-tree builds sort in memory instead of
 *   spilling to disk; sized from this machine's memory and the number of
 *   jobs) and a larger `work_mem` for the query that validates each foreign
 *   key. Measured on bench/restore.ts's 0.9 GB dump on a quiet machine, they
 *   gain little (94-100 s either way): the restore's floor there is one
 *   table's COPY followed by its GIN index build, which PostgreSQL 15 runs
 *   on one core whatever the memory. The server's own settings stay as the
 *   drill cluster starts them (lib/postgres/cluster/, durabilityOff).
 *
 * The caller (bin/drill-db.ts) checks the dump and reports; this only runs it.
 */
import * as os from "node:os";
import { libpqEnvironment, LibpqSettings } from "../config/databaseUrl";
import { run, RunResult } from "../process/processes";

const MiB = 2 ** 20;

/**
 * `maintenance_work_mem` for each of `jobs` restore sessions: a quarter of
 * the machine's memory shared by the jobs, at least the server default
 * (64MB), at most 1GB (2GB measured no better).
 */
export function restoreMaintenanceMemoryMiB(jobs: number, totalBytes: number = os.totalmem()): number {
    const share = Math.floor(totalBytes / 4 / Math.max(1, jobs) / MiB);
    return Math.max(64, Math.min(1024, share));
}

/**
 * PGOPTIONS for pg_restore's sessions: the restore's settings first, then
 * whatever the environment or the URL already set (an operator's explicit
 * setting wins: for `-c`, the last one counts).
 */
export function restoreSessionOptions(jobs: number, existing?: string, totalBytes: number = os.totalmem()): string {
    const maintenance = restoreMaintenanceMemoryMiB(jobs, totalBytes);
    const ours = [`-c maintenance_work_mem=${maintenance}MB`, `-c work_mem=${Math.max(4, Math.floor(maintenance / 4))}MB`];
    return [...ours, ...(existing?.trim() ? [existing.trim()] : [])].join(" ");
}

export interface DrillRestoreOptions {
    database: LibpqSettings;
    dump: string;
    jobs: number;
}

/** The pg_restore invocation the drill runs: program, arguments and environment. */
export function drillRestoreCommand(options: DrillRestoreOptions, baseEnv: NodeJS.ProcessEnv = process.env): { program: string; args: string[]; env: NodeJS.ProcessEnv } {
    const libpq = libpqEnvironment(options.database);
    const existing = libpq.PGOPTIONS ?? baseEnv.PGOPTIONS;
    return {
        program: "pg_restore",
        args: ["-j", String(options.jobs), "--no-owner", "-d", options.database.database, options.dump],
        env: { ...baseEnv, ...libpq, PGOPTIONS: restoreSessionOptions(options.jobs, existing) },
    };
}

/** Runs the restore; never throws on a failed pg_restore (the caller words the error). */
export async function runDrillRestore(options: DrillRestoreOptions): Promise<RunResult> {
    const { program, args, env } = drillRestoreCommand(options);
    return run(program, args, { env });
}

/** For the progress line: the session settings the restore adds, e.g. "maintenance_work_mem=1024MB, work_mem=256MB". */
export function drillRestoreSettings(jobs: number, totalBytes: number = os.totalmem()): string {
    return restoreSessionOptions(jobs, undefined, totalBytes).replace(/-c /g, "").split(" ").join(", ");
}
