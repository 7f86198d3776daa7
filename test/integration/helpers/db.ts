/** Small node-postgres helpers for assertions against a test cluster. */
import type { Client, ClientConfig, QueryResultRow } from "pg";
import { withDatabase } from "../../../lib/postgres/database";

/** The product's withDatabase for a test cluster's node-postgres config: opens a connection for `action` and always closes it. */
export async function withDb<T>(config: ClientConfig, action: (client: Client) => Promise<T>): Promise<T> {
    const { host, port, user, password, database } = config;
    if (!host || !port || !user || !database || typeof password === "function") throw new Error("withDb needs a host, port, user, database and a password as text");
    return withDatabase({ host, port, user, password, database }, action);
}

export async function queryRows<Row extends QueryResultRow = QueryResultRow>(
    config: ClientConfig,
    sql: string,
    params: unknown[] = [],
): Promise<Row[]> {
    return withDb(config, async (client) => (await client.query<Row>(sql, params)).rows);
}

/** First column of the first row (bigint, e.g. count(*), arrives as a string). */
export async function queryScalar(config: ClientConfig, sql: string, params: unknown[] = []): Promise<unknown> {
    const rows = await withDb(config, async (client) => (await client.query({ text: sql, values: params, rowMode: "array" })).rows);
    if (rows.length === 0) throw new Error(`query returned no rows: ${sql}`);
    return rows[0][0];
}

export async function countRows(config: ClientConfig, table: string, where = "TRUE"): Promise<number> {
    return Number(await queryScalar(config, `SELECT count(*) FROM ${table} WHERE ${where}`));
}

export async function columnExists(config: ClientConfig, table: string, column: string): Promise<boolean> {
    const count = await queryScalar(
        config,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
        [table, column],
    );
    return Number(count) > 0;
}

export async function indexExists(config: ClientConfig, index: string): Promise<boolean> {
    const count = await queryScalar(config, "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1", [index]);
    return Number(count) > 0;
}

/**
 * Records every UPDATE of `tables` in `schema_sha_v2_write_log` (table, row id,
 * transaction id), so a test can tell how often each row was written and how
 * many transactions (batches) wrote them. No column list, so the trigger never
 * blocks the downgrade's DROP COLUMN.
 */
export async function installWriteLog(config: ClientConfig, tables: readonly string[]): Promise<void> {
    await withDb(config, async (client) => {
        await client.query(`
            CREATE TABLE IF NOT EXISTS schema_sha_v2_write_log (
                table_name text NOT NULL,
                row_id integer NOT NULL,
                txid bigint NOT NULL DEFAULT txid_current()
            );
            CREATE OR REPLACE FUNCTION log_schema_sha_v2_write() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO schema_sha_v2_write_log (table_name, row_id) VALUES (TG_TABLE_NAME, NEW.id);
                RETURN NULL;
            END $$;
            -- A fresh log each time: a restored dump may carry an older one.
            TRUNCATE schema_sha_v2_write_log;
        `);
        for (const table of tables) {
            const trigger = client.escapeIdentifier(`${table}_log_write`);
            await client.query(`DROP TRIGGER IF EXISTS ${trigger} ON ${client.escapeIdentifier(table)}`);
            await client.query(
                `CREATE TRIGGER ${trigger} AFTER UPDATE ON ${client.escapeIdentifier(table)} FOR EACH ROW EXECUTE FUNCTION log_schema_sha_v2_write()`,
            );
        }
    });
}

export async function removeWriteLog(config: ClientConfig, tables: readonly string[]): Promise<void> {
    await withDb(config, async (client) => {
        for (const table of tables) {
            await client.query(`DROP TRIGGER IF EXISTS ${client.escapeIdentifier(`${table}_log_write`)} ON ${client.escapeIdentifier(table)}`);
        }
        await client.query("DROP TABLE IF EXISTS schema_sha_v2_write_log; DROP FUNCTION IF EXISTS log_schema_sha_v2_write()");
    });
}

export interface WriteLogStats {
    /** Rows written at least once. */
    rowsWritten: number;
    /** Rows written more than once. */
    rowsWrittenTwice: number;
    /** Distinct transactions that wrote, i.e. committed batches. */
    transactions: number;
}

export async function writeLogStats(config: ClientConfig, table: string): Promise<WriteLogStats> {
    const [row] = await queryRows<{ rows_written: string; rows_written_twice: string; transactions: string }>(
        config,
        `SELECT count(DISTINCT row_id) AS rows_written,
                (SELECT count(*) FROM (SELECT row_id FROM schema_sha_v2_write_log WHERE table_name = $1
                                       GROUP BY row_id HAVING count(*) > 1) AS twice) AS rows_written_twice,
                count(DISTINCT txid) AS transactions
         FROM schema_sha_v2_write_log WHERE table_name = $1`,
        [table],
    );
    return { rowsWritten: Number(row.rows_written), rowsWrittenTwice: Number(row.rows_written_twice), transactions: Number(row.transactions) };
}

export async function clearWriteLog(config: ClientConfig): Promise<void> {
    await queryRows(config, "TRUNCATE schema_sha_v2_write_log");
}
