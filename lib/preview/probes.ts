/**
 * The dry run's read-only probes: what `pulumi preview` reports about the
 * live database before anything changes. Each probe stands alone: one that
 * fails (the database does not answer, alembic is missing) is reported with
 * its reason, and every other fact is still gathered.
 *
 * Nothing here writes. SQL runs in a session with
 * default_transaction_read_only=on; alembic and the backfill's --dry-run get
 * the same setting through PGOPTIONS, so the server itself refuses a write.
 * The database URL arrives in PROTEA_DB_URL only, and every string the report
 * carries is scrubbed of it and of its password.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { alembicRevisions, currentRevisions, judgeRevisions } from "../runbook/alembic";
import { parseBackfillSummary } from "../runbook/backfillSummary";
import { BudgetPolicy, NewColumn, ParityCutover, parseDuration } from "../config/config";
import { checkClientTools, ClientToolTarget, ClientToolsVerdict } from "../postgres/clientTools";
import { applicationEnvironment, databaseFromEnvironment } from "../postgres/database";
import { LockBlocker, lockBlockers } from "../runbook/lockAwareApply";
import { ParityDrift, parityDrift } from "../runbook/parityDrift";
import { compareWithRehearsal, pendingSqlChecksum, readRehearsal, RehearsalComparison } from "../runbook/rehearsal";
import type { LockSafetyReport } from "./lockSafety";
import type { BackfillPreview, BackfillTablePreview, BackupSpace, DatabaseFacts, GateVerdict, PendingSql, Probe, ProbeReport } from "./probeReport";
import { redactReport, secretsOf } from "./probeReport";
import { functionVolatility, openReadOnly, readOnlyPgOptions, rowEstimates, rowsToBackfill } from "./readOnlyDatabase";
import { runShell, tail } from "../process/processes";
import { columnStates, nullCounts } from "../postgres/schemaChecks";
import { inDirectory, quote } from "../process/shell";

export interface ProbeOptions {
    /** Application checkout where alembic and the backfill run. */
    appDir: string;
    /** Command that runs alembic in `appDir`. */
    alembic: string;
    /** Command that runs the backfill script in `appDir`. */
    backfill: string;
    expectedHead: string;
    targetRevision: string;
    /** alembic's version table: `alembic current` is read from it. */
    versionTable: string;
    /** Where the pre-flight dump would go. */
    backupDir: string;
    newColumns: NewColumn[];
    /** lock_timeout of one try of the migration (rollout:lockTimeout): sessions older than this would hold it up. */
    lockTimeout: string;
    /** rollout:rehearsal: production compared with the drill's report. */
    rehearsal?: { file: string; sizeFactor: number; budget: BudgetPolicy };
    /** rollout:parityCutover; unset: no drift count. */
    parityCutover?: ParityCutover;
    /** Where the client tools run; unset: not checked. */
    clientTools?: ClientToolTarget;
}

async function probe<T>(run: () => Promise<T>): Promise<Probe<T>> {
    const started = performance.now();
    const millis = () => Math.round(performance.now() - started);
    try {
        const value = await run();
        return { ok: true, value, millis: millis() };
    } catch (err) {
        return { ok: false, error: (err as Error).message, millis: millis() };
    }
}

const valueOf = <T>(p: Probe<T>): T | undefined => (p.ok ? p.value : undefined);
const failed = <T>(error: string): Probe<T> => ({ ok: false, error, millis: 0 });

/** backupDir, or its nearest parent that exists. */
export function nearestExistingDir(dir: string): string {
    let current = path.resolve(dir);
    while (!fs.existsSync(current)) {
        const parent = path.dirname(current);
        if (parent === current) break;
        current = parent;
    }
    return current;
}

export function backupSpace(backupDir: string, expectedDumpBytes?: number): BackupSpace {
    const checkedDir = nearestExistingDir(backupDir);
    const stats = fs.statfsSync(checkedDir);
    const freeBytes = Number(stats.bavail) * Number(stats.bsize);
    return {
        backupDir,
        checkedDir,
        freeBytes,
        ...(expectedDumpBytes !== undefined ? { expectedDumpBytes, enough: freeBytes >= expectedDumpBytes } : {}),
    };
}

/** Per table, the `would_update=<n> skipped=<n>` of `backfill --dry-run`'s summary lines. */
export function parseBackfillDryRun(output: string): Record<string, BackfillTablePreview> {
    const tables: Record<string, BackfillTablePreview> = {};
    for (const [table, counts] of Object.entries(parseBackfillSummary(output))) {
        if (counts.would_update !== undefined) tables[table] = { wouldUpdate: counts.would_update, skipped: counts.skipped ?? 0 };
    }
    return tables;
}

/** What `alembic upgrade <expectedHead>:<targetRevision> --sql` prints (offline: nothing runs against the database). */
export async function pendingMigrationSql(options: Pick<ProbeOptions, "appDir" | "alembic" | "expectedHead" | "targetRevision">, env: NodeJS.ProcessEnv): Promise<PendingSql> {
    const range = `${options.expectedHead}:${options.targetRevision}`;
    const command = inDirectory(options.appDir, `${options.alembic} upgrade ${quote(range)} --sql`);
    const result = await runShell(command, { env: applicationEnvironment(env) });
    if (result.code !== 0) {
        throw new Error(`\`${options.alembic} upgrade ${range} --sql\` in ${options.appDir} failed (exit ${result.code}):\n${tail(result.stderr || result.stdout)}`);
    }
    return { range, sql: result.stdout.trim() };
}

/**
 * Runs the application's `--dry-run` (it must succeed), and takes the counts
 * from the database: how the script prints is its own business.
 */
async function backfillDryRun(options: ProbeOptions, env: NodeJS.ProcessEnv, live: Client): Promise<Record<string, BackfillTablePreview>> {
    const result = await runShell(inDirectory(options.appDir, `${options.backfill} --dry-run`), { env: applicationEnvironment(env) });
    if (result.code !== 0) {
        throw new Error(`\`${options.backfill} --dry-run\` in ${options.appDir} failed (exit ${result.code}):\n${tail(result.stderr || result.stdout)}`);
    }
    const counts = await nullCounts(live, options.newColumns);
    return Object.fromEntries(counts.map((c) => [c.table, { wouldUpdate: c.nulls, skipped: c.rows - c.nulls }]));
}

/**
 * Runs every probe, in parallel where they are independent, and never
 * throws: a failed probe carries its reason. `env` must hold PROTEA_DB_URL.
 */
export async function runProbes(options: ProbeOptions, env: NodeJS.ProcessEnv, log: (line: string) => void = () => {}): Promise<ProbeReport> {
    const started = performance.now();
    // Children get the read-only settings and write no bytecode into the checkout.
    const childEnv: NodeJS.ProcessEnv = { ...env, PGOPTIONS: readOnlyPgOptions(env.PGOPTIONS), PYTHONDONTWRITEBYTECODE: "1" };

    let client: Client | undefined;
    const database = probe(async () => {
        const settings = databaseFromEnvironment(env);
        client = await openReadOnly(settings);
        const facts = await client.query<{ version: string; num: string; size: string }>(
            "SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num, pg_database_size(current_database()) AS size",
        );
        log(`probe: database ${settings.database} at ${settings.host}:${settings.port} answers`);
        return {
            database: settings.database,
            host: settings.host,
            port: settings.port,
            serverVersion: facts.rows[0].version,
            serverVersionNum: Number(facts.rows[0].num),
            sizeBytes: Number(facts.rows[0].size),
        } satisfies DatabaseFacts;
    });
    const alembicCurrent = (async (): Promise<Probe<string[]>> => {
        const db = await database;
        if (!db.ok) return failed(`needs the database: ${db.error}`);
        return probe(() => currentRevisions(client as Client, options.versionTable));
    })();
    const alembicHeads = probe(() => alembicRevisions(options.alembic, options.appDir, "heads", applicationEnvironment(childEnv)));
    const pendingSql = probe(() => pendingMigrationSql(options, childEnv));

    try {
        const backfill = (async (): Promise<Probe<BackfillPreview>> => {
            const db = await database;
            if (!db.ok) return failed(`needs the database: ${db.error}`);
            const live = client as Client;
            return probe(async () => {
                const states = await columnStates(live, options.newColumns);
                if (states.every((s) => s.columnExists)) {
                    return { source: "backfill --dry-run" as const, tables: await backfillDryRun(options, childEnv, live) };
                }
                return { source: "row counts" as const, tables: await rowsToBackfill(live, states) };
            });
        })();

        const lockSafety = (async (): Promise<Probe<LockSafetyReport>> => {
            const pending = await pendingSql;
            if (!pending.ok) return failed(`needs the pending SQL: ${pending.error}`);
            const db = await database;
            return probe(async () => {
                // Loaded here, after alembic has started: its TypeScript is the largest to transpile.
                const { analyzeLockSafety, functionsInDefaults, tablesInSql } = await import("./lockSafety");
                const sql = pending.value.sql;
                // Without the database the reading still stands, only without row estimates.
                const live = db.ok ? client : undefined;
                const estimates = live ? await rowEstimates(live, await tablesInSql(sql)) : undefined;
                const volatility = live ? await functionVolatility(live, await functionsInDefaults(sql)) : undefined;
                return analyzeLockSafety(sql, { rowEstimates: estimates, functionVolatility: volatility });
            });
        })();

        const preflightGate = (async (): Promise<Probe<GateVerdict>> => {
            const [current, heads] = await Promise.all([alembicCurrent, alembicHeads]);
            if (!current.ok) return failed(`needs \`alembic current\`: ${current.error}`);
            if (!heads.ok) return failed(`needs \`alembic heads\`: ${heads.error}`);
            const verdict = judgeRevisions(current.value, heads.value, options.expectedHead, options.targetRevision);
            return { ok: true, value: { ok: verdict.ok, alreadyAtTarget: verdict.alreadyAtTarget, message: verdict.message }, millis: 0 };
        })();

        const space = (async () => {
            const db = await database;
            return probe(async () => backupSpace(options.backupDir, valueOf(db)?.sizeBytes));
        })();

        const blockers = (async (): Promise<Probe<LockBlocker[]>> => {
            const db = await database;
            if (!db.ok) return failed(`needs the database: ${db.error}`);
            // After this probe's own alembic and backfill sessions have ended: they are not in the migration's way.
            const [pending] = await Promise.all([pendingSql, alembicCurrent, alembicHeads, backfill]);
            return probe(async () => {
                const tables = new Set(options.newColumns.map((c) => c.table));
                if (pending.ok) for (const t of await (await import("./lockSafety")).tablesInSql(pending.value.sql)) tables.add(t);
                return lockBlockers(client as Client, [...tables], (parseDuration(options.lockTimeout) ?? 2000) / 1000);
            });
        })();

        const drift = (async (): Promise<Probe<ParityDrift[] | string> | undefined> => {
            const cutover = options.parityCutover;
            if (!cutover) return undefined;
            const db = await database;
            if (!db.ok) return failed(`needs the database: ${db.error}`);
            return probe(async () => {
                const states = await columnStates(client as Client, options.newColumns);
                if (!states.every((s) => s.columnExists)) return "the new columns do not exist yet: the verification counts them after the backfill";
                return parityDrift(client as Client, options.newColumns, cutover);
            });
        })();

        const rehearsal = (async (): Promise<Probe<RehearsalComparison & { source: string; at: string }> | undefined> => {
            const given = options.rehearsal;
            if (!given) return undefined;
            const [db, pending] = [await database, await pendingSql];
            return probe(async () => {
                const r = readRehearsal(given.file);
                if (!db.ok) throw new Error(`needs the database: ${db.error}`);
                const estimates = await rowEstimates(client as Client, Object.keys(r.rows));
                const rows = Object.fromEntries(Object.entries(estimates).map(([table, e]) => [table, Math.round(e.rows)]));
                const pendingSqlSha256 = pending.ok ? pendingSqlChecksum(pending.value.sql) : undefined;
                const facts = { databaseBytes: db.value.sizeBytes, rows, expectedHead: options.expectedHead, targetRevision: options.targetRevision, pendingSqlSha256 };
                return { source: r.source, at: r.at, ...compareWithRehearsal(r, facts, given.sizeFactor, given.budget) };
            });
        })();

        const clientTools = (async (): Promise<Probe<ClientToolsVerdict> | undefined> => {
            const target = options.clientTools;
            if (!target) return undefined;
            const db = await database;
            return probe(() => checkClientTools(target, env, valueOf(db)?.serverVersionNum));
        })();

        const report: ProbeReport = {
            database: await database,
            backupSpace: await space,
            clientTools: await clientTools,
            parityDrift: await drift,
            rehearsal: await rehearsal,
            alembicCurrent: await alembicCurrent,
            alembicHeads: await alembicHeads,
            preflightGate: await preflightGate,
            pendingSql: await pendingSql,
            backfill: await backfill,
            lockSafety: await lockSafety,
            blockers: await blockers,
            millis: 0,
        };
        report.millis = Math.round(performance.now() - started);
        return redactReport(report, secretsOf(env.PROTEA_DB_URL));
    } finally {
        await (client as Client | undefined)?.end().catch(() => undefined);
    }
}
