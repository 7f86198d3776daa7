/**
 * The probes' read-only database session (the server itself refuses a write), and what they
 * read through it: row estimates, the volatility of functions, the rows still to backfill.
 */
import type { Client } from "pg";
import type { LibpqSettings } from "../config/databaseUrl";
import { connect } from "../postgres/database";
import type { ColumnState } from "../postgres/schemaChecks";
import type { RowEstimate } from "./lockTerms";
import type { BackfillTablePreview } from "./probeReport";

/**
 * Session settings for every connection a probe opens: the server refuses
 * writes, and a probe that meets a lock (a migration running elsewhere) gives
 * up instead of queueing behind it.
 */
export const READ_ONLY_SETTINGS = { default_transaction_read_only: "on", lock_timeout: "2s", statement_timeout: "60s" } as const;

/** The same settings as PGOPTIONS, for alembic and the backfill (libpq reads it). */
export function readOnlyPgOptions(existing?: string): string {
    const ours = Object.entries(READ_ONLY_SETTINGS)
        .map(([key, value]) => `-c ${key}=${value}`)
        .join(" ");
    return existing ? `${existing} ${ours}` : ours;
}

/** A connection with READ_ONLY_SETTINGS in force. */
export async function openReadOnly(settings: LibpqSettings): Promise<Client> {
    const client = await connect(settings, "protea-rollout-probe");
    try {
        for (const [key, value] of Object.entries(READ_ONLY_SETTINGS)) await client.query(`SET ${key} = '${value}'`);
    } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
    }
    return client;
}

/** Tables of at most this many pages that were never analyzed are counted exactly: cheaper than a wrong guess. */
const COUNT_BELOW_PAGES = 128;

/**
 * Row estimates of `tables` (as written in the SQL, resolved on the
 * search_path): pg_class.reltuples; for a table never analyzed (reltuples =
 * -1), an exact count when it is small, else the planner's extrapolation from
 * its size on disk. Tables that do not exist are left out.
 */
export async function rowEstimates(client: Client, tables: string[]): Promise<Record<string, RowEstimate>> {
    const estimates: Record<string, RowEstimate> = {};
    for (const table of tables) {
        const found = await client.query<{ reltuples: number; relkind: string; name: string; pages: string }>(
            `SELECT c.reltuples::float8 AS reltuples, c.relkind, c.oid::regclass::text AS name,
                    pg_relation_size(c.oid) / current_setting('block_size')::int AS pages
               FROM pg_class c WHERE c.oid = to_regclass($1)`,
            [table],
        );
        const row = found.rows[0];
        if (!row || !["r", "p", "m"].includes(row.relkind)) continue;
        if (row.reltuples >= 0) {
            estimates[table] = { rows: row.reltuples, source: "statistics" };
        } else if (Number(row.pages) <= COUNT_BELOW_PAGES) {
            const counted = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${row.name}`);
            estimates[table] = { rows: Number(counted.rows[0].n), source: "count" };
        } else {
            const plan = await client.query(`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${row.name}`);
            estimates[table] = { rows: Number(plan.rows[0]["QUERY PLAN"][0].Plan["Plan Rows"]), source: "planner" };
        }
    }
    return estimates;
}

/** Volatility (pg_proc.provolatile) of the functions named, by name; absent ones are left out. */
export async function functionVolatility(client: Client, names: string[]): Promise<Record<string, "i" | "s" | "v">> {
    if (names.length === 0) return {};
    // Of several overloads, the most volatile decides.
    const result = await client.query<{ name: string; volatility: "i" | "s" | "v" }>(
        "SELECT proname AS name, max(provolatile) AS volatility FROM pg_proc WHERE proname = ANY($1) GROUP BY proname",
        [names],
    );
    return Object.fromEntries(result.rows.map((r) => [r.name, r.volatility]));
}

/** Per table of the new columns: every row when the column is missing, the NULL rows when it exists. */
export async function rowsToBackfill(client: Client, states: ColumnState[]): Promise<Record<string, BackfillTablePreview>> {
    const tables: Record<string, BackfillTablePreview> = {};
    for (const c of states) {
        const pending = c.columnExists ? `count(*) FILTER (WHERE ${client.escapeIdentifier(c.column)} IS NULL)` : "count(*)";
        const result = await client.query<{ pending: string; total: string }>(`SELECT ${pending} AS pending, count(*) AS total FROM ${client.escapeIdentifier(c.table)}`);
        const wouldUpdate = Number(result.rows[0].pending);
        tables[c.table] = { wouldUpdate, skipped: Number(result.rows[0].total) - wouldUpdate };
    }
    return tables;
}
