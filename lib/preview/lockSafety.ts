/**
 * A lock-safety reading of migration SQL (what `alembic upgrade --sql` prints), as findings for the
 * operator: which statements make writers (or readers) of a table wait, and how that wait grows with the table.
 */
import { Blocked, blockedBy, LockHold, LockMode, LockSafetyContext, LockTaken, RowEstimate } from "./lockTerms";
import { functionCalls, loadParser, Node, parseStatements } from "./migrationSql";
import { statementLocks } from "./statementLocks";

export interface LockFinding {
    /** 1-based position of the statement in the SQL. */
    statement: number;
    /** The statement, whitespace collapsed, shortened to 200 characters. */
    sql: string;
    /** The table (or index) locked, as written (schema-qualified when it was). */
    table: string;
    lock: LockMode;
    blocks: Blocked;
    holds: LockHold;
    rowEstimate?: RowEstimate;
    /** Later statements of the same transaction block that keep this lock held (their 1-based positions). */
    heldThrough: number[];
    severity: "warning" | "info";
    /** One line for the operator. */
    message: string;
}

export interface LockSafetyReport {
    /** Statements in the SQL, transaction control included. */
    statements: number;
    /** PostgreSQL version of the grammar that read it, e.g. 160001. */
    parserVersion: number;
    findings: LockFinding[];
}

/** alembic's own bookkeeping table: its one-row UPDATE is not a data migration. */
export const ALEMBIC_VERSION_TABLE = "alembic_version";

/** Names of the functions called in column defaults, for a pg_proc volatility look-up. */
export async function functionsInDefaults(sql: string): Promise<string[]> {
    const { statements } = parseStatements(await loadParser(), sql);
    const names = new Set<string>();
    for (const { node, kind } of statements) {
        if (kind !== "AlterTableStmt") continue;
        for (const { AlterTableCmd: cmd } of node.cmds ?? []) {
            const defaults = cmd?.subtype === "AT_AddColumn" ? (cmd.def?.ColumnDef?.constraints ?? []).filter((c: Node) => c.Constraint?.contype === "CONSTR_DEFAULT") : [];
            for (const d of defaults) for (const name of functionCalls(d.Constraint.raw_expr)) names.add(name);
        }
    }
    return [...names].sort();
}

const bareName = (table: string) => table.split(".").pop() ?? table;
const isAlembicBookkeeping = (taken: { table: string; holds: LockHold }) => bareName(taken.table) === ALEMBIC_VERSION_TABLE && taken.holds === "row writes";

/** "dataset (~1,234 rows)", or "dataset" when its size is unknown. */
export function describeTable(table: string, estimate?: RowEstimate): string {
    if (!estimate) return table;
    const count = Math.round(estimate.rows);
    const rows = `${count.toLocaleString("en-US")} ${count === 1 ? "row" : "rows"}`;
    switch (estimate.source) {
        case "statistics":
            return `${table} (~${rows})`;
        case "count":
            return `${table} (${rows})`;
        case "planner":
            return `${table} (~${rows}, never analyzed: the planner's guess)`;
    }
}

function holdsMessage(holds: LockHold): string {
    switch (holds) {
        case "brief":
            return "briefly";
        case "row writes":
            return "while it writes the rows";
        case "index build":
            return "for the whole index build";
        case "table scan":
            return "while it scans every row";
        case "table rewrite":
            return "while it rewrites every row";
    }
}

/**
 * Reads `sql` statement by statement: what each one locks, what that blocks,
 * and for how long. Inside an explicit transaction block (alembic's offline
 * SQL wraps every migration in BEGIN … COMMIT) a lock is held until COMMIT,
 * so a lock that is brief on its own lasts through every slower statement
 * after it in the block. Warnings are findings that make writers (or readers)
 * wait for longer than a catalog update.
 */
export async function analyzeLockSafety(sql: string, context: LockSafetyContext = {}): Promise<LockSafetyReport> {
    const { version, statements } = parseStatements(await loadParser(), sql);
    const estimateOf = (table: string) => context.rowEstimates?.[table] ?? (table.includes(".") ? undefined : context.rowEstimates?.[bareName(table)]);

    interface Taken extends LockTaken {
        statement: number;
        sql: string;
        block?: number;
    }
    const taken: Taken[] = [];
    let block: number | undefined;
    statements.forEach(({ node, kind, text }, i) => {
        if (kind === "TransactionStmt") {
            if (node.kind === "TRANS_STMT_BEGIN" || node.kind === "TRANS_STMT_START") block = i;
            if (node.kind === "TRANS_STMT_COMMIT" || node.kind === "TRANS_STMT_ROLLBACK" || node.kind === "TRANS_STMT_PREPARE") block = undefined;
            return;
        }
        for (const lock of statementLocks(kind, node, context)) {
            taken.push({ ...lock, statement: i + 1, sql: text, block });
        }
    });

    const findings = taken.map((t): LockFinding => {
        const fails = t.block !== undefined && t.outsideTransactionOnly ? `${t.outsideTransactionOnly} cannot run inside a transaction block: this statement would fail` : undefined;
        const blocks = blockedBy(t.lock);
        const slowerLater =
            t.block === undefined || blocks === "nothing"
                ? []
                : taken.filter((later) => later.block === t.block && later.statement > t.statement && later.holds !== "brief" && !isAlembicBookkeeping(later));
        const heldThrough = [...new Set(slowerLater.map((later) => later.statement))];
        const rowEstimate = estimateOf(t.table);
        const long = t.holds !== "brief" && t.holds !== "row writes";
        const severity = fails || (blocks !== "nothing" && (long || heldThrough.length > 0)) ? "warning" : "info";
        const parts = [`statement ${t.statement} (${t.sql}): ${t.reasons.join("; ")}`];
        if (fails) {
            parts.push(fails);
        } else if (blocks === "nothing") {
            parts.push(`${t.lock} on ${describeTable(t.table, rowEstimate)} blocks neither reads nor writes`);
        } else {
            parts.push(`${t.lock} on ${describeTable(t.table, rowEstimate)} blocks ${blocks} ${holdsMessage(t.holds)}`);
            if (heldThrough.length > 0) {
                const why = slowerLater.map((later) => `${later.holds} on ${later.table}`);
                parts.push(`inside the transaction the lock is held until COMMIT, through statement${heldThrough.length > 1 ? "s" : ""} ${heldThrough.join(", ")} (${[...new Set(why)].join(", ")})`);
            }
        }
        if (severity === "warning" && t.advice) parts.push(`safer: ${t.advice}`);
        return {
            statement: t.statement,
            sql: t.sql,
            table: t.table,
            lock: t.lock,
            blocks,
            holds: t.holds,
            ...(rowEstimate ? { rowEstimate } : {}),
            heldThrough,
            severity,
            message: parts.join("; "),
        };
    });
    return { statements: statements.length, parserVersion: version, findings };
}

/** Tables named in the SQL's statements, for a row-estimate look-up. */
export async function tablesInSql(sql: string): Promise<string[]> {
    const { statements } = parseStatements(await loadParser(), sql);
    const tables = new Set<string>();
    for (const { kind, node } of statements) for (const t of statementLocks(kind, node, {})) tables.add(t.table);
    return [...tables].sort();
}
