/**
 * The runbook's checks by eye (`\d dataset | grep schema_sha`, `count(*) …
 * IS NULL`), as queries whose results a gate can judge.
 */
import { Client } from "pg";
import type { NewColumn } from "../config/config";

export interface ColumnState {
    table: string;
    column: string;
    index: string;
    columnExists: boolean;
    indexExists: boolean;
}

export async function columnStates(client: Client, columns: NewColumn[]): Promise<ColumnState[]> {
    const states: ColumnState[] = [];
    for (const c of columns) {
        const column = await client.query(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
            [c.table, c.column],
        );
        const index = await client.query("SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname = $2", [c.table, c.index]);
        states.push({ table: c.table, column: c.column, index: c.index, columnExists: column.rowCount! > 0, indexExists: index.rowCount! > 0 });
    }
    return states;
}

/** What does not match the expectation, as lines for an error; empty when all is as expected. */
export function schemaMismatches(states: ColumnState[], expect: "present" | "absent"): string[] {
    const want = expect === "present";
    const problems: string[] = [];
    for (const s of states) {
        if (s.columnExists !== want) problems.push(`column ${s.table}.${s.column} is ${s.columnExists ? "present" : "missing"}`);
        if (s.indexExists !== want) problems.push(`index ${s.index} on ${s.table} is ${s.indexExists ? "present" : "missing"}`);
    }
    return problems;
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

export interface NullCount {
    table: string;
    column: string;
    nulls: number;
    rows: number;
}

export async function nullCounts(client: Client, columns: NewColumn[]): Promise<NullCount[]> {
    const counts: NullCount[] = [];
    for (const c of columns) {
        const result = await client.query(
            `SELECT count(*) FILTER (WHERE ${ident(c.column)} IS NULL) AS nulls, count(*) AS rows FROM ${ident(c.table)}`,
        );
        counts.push({ table: c.table, column: c.column, nulls: Number(result.rows[0].nulls), rows: Number(result.rows[0].rows) });
    }
    return counts;
}

export interface ParityReport {
    table: string;
    sampled: number;
    matching: number;
}

/**
 * How "latest" is read for a table, from its catalog: `created_at` when it has
 * one, else its primary key, else no order (an arbitrary sample). No query
 * assumes a column the config does not name.
 */
async function latestFirst(client: Client, table: string): Promise<string> {
    const result = await client.query(
        `SELECT a.attname,
                (a.attname = 'created_at') AS is_created_at,
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY (i.indkey)) AS in_primary_key
           FROM pg_attribute a
          WHERE a.attrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum`,
        [table],
    );
    const keys = result.rows.filter((r) => r.in_primary_key).map((r) => `${ident(r.attname)} DESC`);
    const created = result.rows.some((r) => r.is_created_at) ? [`${ident("created_at")} DESC`] : [];
    const order = [...created, ...keys];
    return order.length > 0 ? `ORDER BY ${order.join(", ")}` : "";
}

/** Of the latest `sample` rows per table, how many have legacy = new value. */
export async function parityReport(client: Client, columns: NewColumn[], sample: number): Promise<ParityReport[]> {
    const reports: ParityReport[] = [];
    for (const c of columns) {
        const result = await client.query(
            `SELECT count(*) AS sampled, count(*) FILTER (WHERE ${ident(c.legacyColumn)} = ${ident(c.column)}) AS matching
               FROM (SELECT ${ident(c.legacyColumn)}, ${ident(c.column)} FROM ${ident(c.table)} ${await latestFirst(client, c.table)} LIMIT $1) latest`,
            [sample],
        );
        reports.push({ table: c.table, sampled: Number(result.rows[0].sampled), matching: Number(result.rows[0].matching) });
    }
    return reports;
}
