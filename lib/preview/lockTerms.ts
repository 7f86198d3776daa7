/**
 * The lock-safety reading's terms: table lock modes, what a lock blocks and how long it is held,
 * one lock a statement takes, and what the database adds (row estimates, function volatility).
 */

/** Table lock modes, weakest first (PostgreSQL's numbering is this order + 1). */
export const LOCK_MODES = [
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
] as const;
export type LockMode = (typeof LOCK_MODES)[number];

/** What a lock holds up: INSERT/UPDATE/DELETE take ROW EXCLUSIVE, SELECT takes ACCESS SHARE. */
export type Blocked = "nothing" | "writes" | "reads and writes";

/** What the time a lock is held grows with. */
export type LockHold = "brief" | "row writes" | "index build" | "table scan" | "table rewrite";

const HOLD_WEIGHT: Record<LockHold, number> = { brief: 0, "row writes": 1, "index build": 2, "table scan": 3, "table rewrite": 4 };

/** A table's row count as far as it is known without a full count. */
export interface RowEstimate {
    rows: number;
    /**
     * statistics: pg_class.reltuples (kept by ANALYZE, VACUUM, CREATE INDEX);
     * count: counted exactly (a small table never analyzed);
     * planner: never analyzed, the planner's extrapolation from its size on disk.
     */
    source: "statistics" | "count" | "planner";
}

export interface LockSafetyContext {
    /** Row estimates by table, keyed `schema.table` and, for the session's current schema, `table`. */
    rowEstimates?: Record<string, RowEstimate>;
    /**
     * Volatility of functions called in column defaults (pg_proc.provolatile:
     * i, s or v), by lower-case name. Functions not listed here or in the
     * built-in list are reported as "volatility unknown".
     */
    functionVolatility?: Record<string, "i" | "s" | "v">;
}

export const blockedBy = (lock: LockMode): Blocked => {
    const strength = LOCK_MODES.indexOf(lock);
    if (strength === LOCK_MODES.indexOf("ACCESS EXCLUSIVE")) return "reads and writes";
    // ROW EXCLUSIVE (writers) conflicts with SHARE and everything stronger.
    return strength >= LOCK_MODES.indexOf("SHARE") ? "writes" : "nothing";
};

export const stronger = (a: LockMode, b: LockMode): LockMode => (LOCK_MODES.indexOf(a) >= LOCK_MODES.indexOf(b) ? a : b);
export const longer = (a: LockHold, b: LockHold): LockHold => (HOLD_WEIGHT[a] >= HOLD_WEIGHT[b] ? a : b);

/** One lock a statement takes, before row estimates and transaction scope are added. */
export interface LockTaken {
    table: string;
    lock: LockMode;
    holds: LockHold;
    /** Why, for the operator ("adds a column with a volatile default, which rewrites every row"). */
    reasons: string[];
    /** What to do instead, when there is a safer form. */
    advice?: string;
    /** Cannot run inside a transaction block (CONCURRENTLY, VACUUM): names the form, e.g. "CREATE INDEX CONCURRENTLY". */
    outsideTransactionOnly?: string;
}
