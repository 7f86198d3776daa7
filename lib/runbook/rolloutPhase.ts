/**
 * Where the database stands in the rollout, read at the start of every
 * preview and up, before anything acts. The state alone cannot say whether a
 * step must run again (after a rollback, an out-of-band downgrade, a failed
 * backfill); the database can. Steps the database shows are still needed
 * get a fresh token and run again; the others keep theirs and stay as they are.
 */
import type { Client } from "pg";
import type { NewColumn } from "../config/config";
import { columnStates } from "../postgres/schemaChecks";

export type RolloutPhase =
    /** The database did not answer (a drill's clone before it exists): nothing re-runs on its account. */
    | "unreachable"
    /** None of the new columns and indexes exist: the migration is to be applied. */
    | "pending"
    /** Some exist, some do not: the gates will name it. */
    | "partial"
    /** All exist, some rows still NULL: the backfill is to be finished. */
    | "incomplete"
    /** All exist and every row is populated. */
    | "complete";

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Reads the catalog only, so a missing column never shows as an error in the server's log. */
export async function observePhase(client: Client, columns: NewColumn[]): Promise<RolloutPhase> {
    const states = await columnStates(client, columns);
    const present = states.filter((s) => s.columnExists && s.indexExists).length;
    const absent = states.filter((s) => !s.columnExists && !s.indexExists).length;
    if (absent === states.length) return "pending";
    if (present !== states.length) return "partial";
    for (const c of columns) {
        const nulls = await client.query(`SELECT EXISTS (SELECT 1 FROM ${ident(c.table)} WHERE ${ident(c.column)} IS NULL) AS any`);
        if (nulls.rows[0].any) return "incomplete";
    }
    return "complete";
}

/**
 * A step's re-run token (carried in its command's stdin, which the tools
 * ignore): `keep` tells the program to keep the state's value (ignoreChanges),
 * otherwise a new value makes the step run again as an update.
 */
export interface Rerun {
    token: string;
    keep: boolean;
}

export interface PhaseReruns {
    /** Preflight, backup and migration: again whenever the migration is not in the database. */
    apply: Rerun;
    /** Quiesce, backfill, verification and resume: again until every row is populated. */
    finish: Rerun;
}

export function rerunsFor(phase: RolloutPhase, now = new Date()): PhaseReruns {
    const token = `${phase} ${now.toISOString()}`;
    const applied = phase === "incomplete" || phase === "complete" || phase === "unreachable";
    const finished = phase === "complete" || phase === "unreachable";
    return { apply: { token, keep: applied }, finish: { token, keep: finished } };
}
