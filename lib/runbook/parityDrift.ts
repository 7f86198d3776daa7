/**
 * The runbook's parity rule, enforced: rows produced after the parity fix
 * (the cut-over, rollout:parityCutover) must have legacy = v2; rows from
 * before it may differ. Counts both sides per table and lists the first ids of
 * rows after the cut-over that differ ("drift"). Read-only.
 */
import type { Client } from "pg";
import type { NewColumn, ParityCutover } from "../config/config";

export interface ParityDrift {
    table: string;
    /** The column compared with the cut-over. */
    column: string;
    before: { rows: number; differ: number };
    after: { rows: number; differ: number };
    /** The first ids (primary key, as text) of rows after the cut-over that differ. */
    driftIds: string[];
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** The table's primary key columns, in key order. */
async function primaryKey(client: Client, table: string): Promise<string[]> {
    const result = await client.query(
        `SELECT a.attname FROM pg_index i
           JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) AND i.indisprimary
          ORDER BY k.ord`,
        [table],
    );
    return result.rows.map((r) => r.attname as string);
}

async function hasColumn(client: Client, table: string, column: string): Promise<boolean> {
    const result = await client.query(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
        [table, column],
    );
    return (result.rowCount ?? 0) > 0;
}

/**
 * Per table: rows before and after the cut-over and how many differ (legacy
 * IS DISTINCT FROM v2), with the first `listIds` ids of drifted rows. Throws
 * naming the key when a table has no column to compare with the cut-over.
 */
export async function parityDrift(client: Client, columns: NewColumn[], cutover: ParityCutover, listIds = 10): Promise<ParityDrift[]> {
    const reports: ParityDrift[] = [];
    for (const c of columns) {
        const key = await primaryKey(client, c.table);
        const column = cutover.column ?? (cutover.kind === "time" ? "created_at" : key.length === 1 ? key[0] : undefined);
        if (!column || !(await hasColumn(client, c.table, column))) {
            throw new Error(
                `table ${c.table} has no ${column ? `column ${column}` : "one-column primary key"} to compare with rollout:parityCutover: set rollout:parityCutoverColumn to the column that orders its rows (a time for a time, an id for an id)`,
            );
        }
        const after = `${ident(column)} >= $1`;
        const differ = `${ident(c.legacyColumn)} IS DISTINCT FROM ${ident(c.column)}`;
        const counts = (await client.query(
            `SELECT count(*) FILTER (WHERE NOT (${after})) AS before_rows, count(*) FILTER (WHERE NOT (${after}) AND ${differ}) AS before_differ,
                    count(*) FILTER (WHERE ${after}) AS after_rows, count(*) FILTER (WHERE ${after} AND ${differ}) AS after_differ
               FROM ${ident(c.table)}`,
            [cutover.value],
        )).rows[0];
        const idText = key.length > 0 ? key.map((k) => `${ident(k)}::text`).join(` || ',' || `) : "ctid::text";
        const ids = Number(counts.after_differ) > 0
            ? (await client.query(`SELECT ${idText} AS id FROM ${ident(c.table)} WHERE ${after} AND ${differ} ORDER BY ${key.length > 0 ? key.map(ident).join(", ") : "ctid"} LIMIT ${listIds}`, [cutover.value])).rows.map((r) => String(r.id))
            : [];
        reports.push({
            table: c.table,
            column,
            before: { rows: Number(counts.before_rows), differ: Number(counts.before_differ) },
            after: { rows: Number(counts.after_rows), differ: Number(counts.after_differ) },
            driftIds: ids,
        });
    }
    return reports;
}

/** One line per table, as the verification and the preview print it. */
export function describeParityDrift(d: ParityDrift, cutover: ParityCutover): string {
    const ids = d.after.differ > 0 ? ` (first ids: ${d.driftIds.join(", ")}${d.after.differ > d.driftIds.length ? ", …" : ""})` : "";
    return `${d.table}: ${d.before.rows} rows before the cut-over (${d.column} < ${cutover.value}), ${d.before.differ} differ as expected; ${d.after.rows} after it, ${d.after.differ} differ${ids}`;
}
