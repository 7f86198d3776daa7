/**
 * A lock-safety reading of migration SQL (what `alembic upgrade --sql`
 * prints): which statements make writers (or readers) of a table wait, and
 * for how long that wait grows with the table. The SQL is parsed by
 * PostgreSQL's own grammar (libpg_query, PostgreSQL 16, compiled to
 * WebAssembly), so quoting, comments, dollar quotes and multi-command ALTER
 * TABLEs read as the server reads them.
 *
 * What takes which lock follows the PostgreSQL 16 documentation ("Explicit
 * Locking", ALTER TABLE, CREATE INDEX). Without the catalog some answers are
 * "may": an ALTER COLUMN TYPE between binary-compatible types does not
 * rewrite, which the SQL alone cannot tell.
 */

import { loadModule, parseSync } from "libpg-query";

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

/** Raised when the SQL does not parse; says where. */
export class SqlParseError extends Error {
    constructor(message: string, readonly position?: number) {
        super(`the migration SQL does not parse with PostgreSQL's grammar: ${message}${position !== undefined && position >= 0 ? ` (at character ${position})` : ""}`);
        this.name = "SqlParseError";
    }
}

/** alembic's own bookkeeping table: its one-row UPDATE is not a data migration. */
export const ALEMBIC_VERSION_TABLE = "alembic_version";

// Defaults calling these make ADD COLUMN rewrite the table (PostgreSQL 11+
// stores non-volatile defaults in the catalog instead).
const VOLATILE_FUNCTIONS = new Set([
    "random", "random_normal", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
    "clock_timestamp", "timeofday", "nextval", "setval", "txid_current", "pg_current_xact_id",
]);
const NON_VOLATILE_FUNCTIONS = new Set(["now", "transaction_timestamp", "statement_timestamp", "current_setting", "lower", "upper", "coalesce", "md5"]);
const SERIAL_TYPES = new Set(["serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"]);

// PostgreSQL's parse tree as libpg_query's JSON: read field by field, as the
// server's node types name them (IndexStmt.concurrent, AlterTableCmd.subtype, …).
type Node = any;

interface Parser {
    parseSync(sql: string): { version: number; stmts?: { stmt: Node; stmt_location?: number; stmt_len?: number }[] };
}

let parserLoad: Promise<Parser> | undefined;

/** Instantiates libpg_query's WebAssembly module once (about 20 ms). */
function loadParser(): Promise<Parser> {
    parserLoad ??= loadModule().then(() => ({ parseSync }));
    return parserLoad;
}

interface ParsedStatement {
    node: Node;
    kind: string;
    text: string;
}

function parseStatements(parser: Parser, sql: string): { version: number; statements: ParsedStatement[] } {
    let tree: ReturnType<Parser["parseSync"]>;
    try {
        tree = parser.parseSync(sql);
    } catch (err) {
        const e = err as Error & { sqlDetails?: { cursorPosition?: number } };
        throw new SqlParseError(e.message, e.sqlDetails?.cursorPosition);
    }
    // Locations are byte offsets into the UTF-8 text.
    const bytes = Buffer.from(sql, "utf8");
    const statements = (tree.stmts ?? []).map(({ stmt, stmt_location = 0, stmt_len }) => {
        const kind = Object.keys(stmt)[0];
        const raw = bytes.subarray(stmt_location, stmt_len === undefined || stmt_len === 0 ? bytes.length : stmt_location + stmt_len).toString("utf8");
        return { node: stmt[kind], kind, text: statementText(raw) };
    });
    return { version: tree.version, statements };
}

/** A statement as one line: comments and extra whitespace dropped, at most 200 characters. */
function statementText(raw: string): string {
    const text = raw
        .split("\n")
        .map((line) => (line.trimStart().startsWith("--") ? "" : line))
        .join(" ")
        .replace(/\s+/g, " ")
        .trim()
        .replace(/;$/, "");
    return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

const relationName = (rangeVar: Node): string => (rangeVar?.schemaname ? `${rangeVar.schemaname}.${rangeVar.relname}` : String(rangeVar?.relname ?? "?"));

const blockedBy = (lock: LockMode): Blocked => {
    const strength = LOCK_MODES.indexOf(lock);
    if (strength === LOCK_MODES.indexOf("ACCESS EXCLUSIVE")) return "reads and writes";
    // ROW EXCLUSIVE (writers) conflicts with SHARE and everything stronger.
    return strength >= LOCK_MODES.indexOf("SHARE") ? "writes" : "nothing";
};

const stronger = (a: LockMode, b: LockMode): LockMode => (LOCK_MODES.indexOf(a) >= LOCK_MODES.indexOf(b) ? a : b);
const longer = (a: LockHold, b: LockHold): LockHold => (HOLD_WEIGHT[a] >= HOLD_WEIGHT[b] ? a : b);

/** One lock a statement takes, before row estimates and transaction scope are added. */
interface LockTaken {
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

function funcName(call: Node): string {
    const names: Node[] = call.funcname ?? [];
    return String(names[names.length - 1]?.String?.sval ?? "?").toLowerCase();
}

/** Every function called anywhere in an expression tree. */
function functionCalls(expr: Node, found: string[] = []): string[] {
    if (Array.isArray(expr)) {
        for (const item of expr) functionCalls(item, found);
    } else if (expr && typeof expr === "object") {
        if (expr.FuncCall) found.push(funcName(expr.FuncCall));
        for (const value of Object.values(expr)) functionCalls(value, found);
    }
    return found;
}

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

type Volatility = "volatile" | "non-volatile" | "unknown";

function defaultVolatility(expr: Node, context: LockSafetyContext): { volatility: Volatility; functions: string[] } {
    const calls = functionCalls(expr);
    let volatility: Volatility = "non-volatile";
    const named: string[] = [];
    for (const name of calls) {
        const known = context.functionVolatility?.[name];
        if (known === "v" || (known === undefined && VOLATILE_FUNCTIONS.has(name))) {
            volatility = "volatile";
            named.push(name);
        } else if (known === undefined && !NON_VOLATILE_FUNCTIONS.has(name) && volatility !== "volatile") {
            volatility = "unknown";
            named.push(name);
        }
    }
    return { volatility, functions: named };
}

/** ALTER TABLE … ADD COLUMN: metadata only, unless the new column has to be written into every row or checked. */
function addColumn(column: Node, context: LockSafetyContext): { holds: LockHold; reasons: string[]; advice?: string } {
    const name = column.colname;
    const typeNames: Node[] = column.typeName?.names ?? [];
    const typeName = String(typeNames[typeNames.length - 1]?.String?.sval ?? "").toLowerCase();
    const constraints: Node[] = (column.constraints ?? []).map((c: Node) => c.Constraint);
    let holds: LockHold = "brief";
    const reasons: string[] = [];
    let advice: string | undefined;
    const add = (h: LockHold, reason: string, tip?: string) => {
        holds = longer(holds, h);
        reasons.push(reason);
        advice ??= tip;
    };
    const hasDefault = constraints.some((c) => c.contype === "CONSTR_DEFAULT");
    if (SERIAL_TYPES.has(typeName)) add("table rewrite", `adds ${typeName} column ${name}, which fills every row from a sequence (a rewrite)`, "add the column without a default, backfill it in batches, then set the default");
    for (const c of constraints) {
        switch (c.contype) {
            case "CONSTR_DEFAULT": {
                const { volatility, functions } = defaultVolatility(c.raw_expr, context);
                if (volatility === "volatile") {
                    add("table rewrite", `adds column ${name} with a volatile default (${functions.join(", ")}()), which rewrites every row`, "add the column without a default (or with a constant one), then backfill it in batches");
                } else if (volatility === "unknown") {
                    add("table rewrite", `adds column ${name} with a default calling ${functions.join(", ")}() of unknown volatility: if volatile, every row is rewritten`);
                }
                break;
            }
            case "CONSTR_GENERATED":
                add("table rewrite", `adds generated column ${name}, computed into every row (a rewrite)`);
                break;
            case "CONSTR_IDENTITY":
                add("table rewrite", `adds identity column ${name}, which fills every row from a sequence (a rewrite)`);
                break;
            case "CONSTR_CHECK":
                if (!c.skip_validation) add("table scan", `checks the new column ${name} against every row (CHECK)`, "add the CHECK as NOT VALID, then VALIDATE CONSTRAINT in a separate transaction");
                break;
            case "CONSTR_FOREIGN":
                add("table scan", `validates the foreign key on ${name} against every row`, "add the foreign key NOT VALID, then VALIDATE CONSTRAINT separately");
                break;
            case "CONSTR_PRIMARY":
            case "CONSTR_UNIQUE":
                add("index build", `builds a ${c.contype === "CONSTR_PRIMARY" ? "primary key" : "unique"} index on the new column ${name} under the lock`, "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … USING INDEX");
                break;
            case "CONSTR_NOTNULL":
                if (!hasDefault) add("table scan", `adds NOT NULL column ${name} without a default, which fails on a table with rows`);
                break;
        }
    }
    if (reasons.length === 0) reasons.push(`adds column ${name} to the catalog only (no rewrite)`);
    return { holds, reasons, advice };
}

function alterTableCommand(cmd: Node, context: LockSafetyContext): { lock: LockMode; holds: LockHold; reason: string; advice?: string } {
    const exclusive = "ACCESS EXCLUSIVE" as const;
    switch (cmd.subtype) {
        case "AT_AddColumn": {
            const { holds, reasons, advice } = addColumn(cmd.def?.ColumnDef ?? {}, context);
            return { lock: exclusive, holds, reason: reasons.join("; "), advice };
        }
        case "AT_AlterColumnType":
            return {
                lock: exclusive,
                holds: "table rewrite",
                reason: `changes the type of column ${cmd.name}, which rewrites the table (and its indexes) unless the types are binary-compatible`,
                advice: "add a new column, backfill it in batches, then swap",
            };
        case "AT_SetNotNull":
            return { lock: exclusive, holds: "table scan", reason: `SET NOT NULL on ${cmd.name} scans every row`, advice: "add a CHECK (… IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (PostgreSQL 12+ skips the scan)" };
        case "AT_AddConstraint": {
            const c = cmd.def?.Constraint ?? {};
            const name = c.conname ? ` ${c.conname}` : "";
            switch (c.contype) {
                case "CONSTR_CHECK":
                    return c.skip_validation
                        ? { lock: exclusive, holds: "brief", reason: `adds CHECK${name} NOT VALID (no scan)` }
                        : { lock: exclusive, holds: "table scan", reason: `adds CHECK${name}, validated against every row under the lock`, advice: "add it NOT VALID, then VALIDATE CONSTRAINT in a separate transaction" };
                case "CONSTR_FOREIGN":
                    return c.skip_validation
                        ? { lock: "SHARE ROW EXCLUSIVE", holds: "brief", reason: `adds FOREIGN KEY${name} NOT VALID (no scan)` }
                        : { lock: "SHARE ROW EXCLUSIVE", holds: "table scan", reason: `adds FOREIGN KEY${name}, validated against every row`, advice: "add it NOT VALID, then VALIDATE CONSTRAINT separately" };
                case "CONSTR_PRIMARY":
                case "CONSTR_UNIQUE":
                case "CONSTR_EXCLUSION":
                    if (c.indexname) return { lock: exclusive, holds: "brief", reason: `adds constraint${name} using the existing index ${c.indexname}` };
                    return { lock: exclusive, holds: "index build", reason: `adds constraint${name}, building its index under the lock`, advice: "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … USING INDEX" };
                default:
                    return { lock: exclusive, holds: "brief", reason: `adds constraint${name}` };
            }
        }
        case "AT_ValidateConstraint":
            return { lock: "SHARE UPDATE EXCLUSIVE", holds: "table scan", reason: `validates constraint ${cmd.name} (scans, but lets reads and writes through)` };
        case "AT_SetTableSpace":
            return { lock: exclusive, holds: "table rewrite", reason: `moves the table to tablespace ${cmd.name} (copies every row)` };
        case "AT_SetLogged":
        case "AT_SetUnLogged":
            return { lock: exclusive, holds: "table rewrite", reason: `${cmd.subtype === "AT_SetLogged" ? "SET LOGGED" : "SET UNLOGGED"} rewrites the table` };
        case "AT_SetStatistics":
        case "AT_SetOptions":
        case "AT_ResetOptions":
        case "AT_ClusterOn":
        case "AT_DropCluster":
            return { lock: "SHARE UPDATE EXCLUSIVE", holds: "brief", reason: "changes planner settings only" };
        case "AT_DetachPartition":
            if (cmd.def?.PartitionCmd?.concurrent) return { lock: "SHARE UPDATE EXCLUSIVE", holds: "brief", reason: "detaches a partition concurrently" };
            return { lock: exclusive, holds: "brief", reason: "detaches a partition" };
        case "AT_AttachPartition":
            return { lock: "SHARE UPDATE EXCLUSIVE", holds: "table scan", reason: "attaches a partition, scanning it unless a matching CHECK constraint exists" };
        case "AT_DropColumn":
            return { lock: exclusive, holds: "brief", reason: `drops column ${cmd.name} from the catalog (no rewrite)` };
        default:
            return { lock: exclusive, holds: "brief", reason: `${String(cmd.subtype).replace(/^AT_/, "")} changes the catalog only` };
    }
}

function statementLocks(kind: string, node: Node, context: LockSafetyContext): LockTaken[] {
    switch (kind) {
        case "IndexStmt": {
            const table = relationName(node.relation);
            const index = node.idxname ? ` ${node.idxname}` : "";
            if (node.concurrent) {
                return [
                    {
                        table,
                        lock: "SHARE UPDATE EXCLUSIVE",
                        holds: "index build",
                        reasons: [`builds index${index} concurrently (reads and writes go on)`],
                        outsideTransactionOnly: "CREATE INDEX CONCURRENTLY",
                    },
                ];
            }
            return [
                {
                    table,
                    lock: "SHARE",
                    holds: "index build",
                    reasons: [`builds ${node.unique ? "unique " : ""}index${index} without CONCURRENTLY`],
                    advice: "CREATE INDEX CONCURRENTLY, outside a transaction block",
                },
            ];
        }
        case "AlterTableStmt": {
            if (!node.relation) return [];
            const commands = (node.cmds ?? []).map((c: Node) => alterTableCommand(c.AlterTableCmd ?? {}, context));
            if (commands.length === 0) return [];
            return [
                {
                    table: relationName(node.relation),
                    lock: commands.map((c: { lock: LockMode }) => c.lock).reduce(stronger),
                    holds: commands.map((c: { holds: LockHold }) => c.holds).reduce(longer),
                    reasons: commands.map((c: { reason: string }) => c.reason),
                    advice: commands.find((c: { advice?: string }) => c.advice)?.advice,
                },
            ];
        }
        case "VacuumStmt": {
            const full = (node.options ?? []).some((o: Node) => o.DefElem?.defname === "full");
            const what = node.is_vacuumcmd ? (full ? "VACUUM FULL" : "VACUUM") : "ANALYZE";
            return (node.rels ?? []).map((r: Node) => ({
                table: relationName(r.VacuumRelation?.relation),
                lock: full ? "ACCESS EXCLUSIVE" : "SHARE UPDATE EXCLUSIVE",
                holds: full ? "table rewrite" : "table scan",
                reasons: [full ? "VACUUM FULL rewrites the table" : `${what} scans the table (reads and writes go on)`],
                advice: full ? "pg_repack, or plain VACUUM" : undefined,
                outsideTransactionOnly: node.is_vacuumcmd ? what : undefined,
            }));
        }
        case "ClusterStmt":
            return node.relation ? [{ table: relationName(node.relation), lock: "ACCESS EXCLUSIVE", holds: "table rewrite", reasons: ["CLUSTER rewrites the table in index order"] }] : [];
        case "ReindexStmt": {
            const concurrent = (node.params ?? []).some((p: Node) => p.DefElem?.defname === "concurrently");
            if (!node.relation) return [];
            return [
                concurrent
                    ? {
                          table: relationName(node.relation),
                          lock: "SHARE UPDATE EXCLUSIVE",
                          holds: "index build",
                          reasons: ["REINDEX CONCURRENTLY (reads and writes go on)"],
                          outsideTransactionOnly: "REINDEX CONCURRENTLY",
                      }
                    : { table: relationName(node.relation), lock: "SHARE", holds: "index build", reasons: ["REINDEX blocks writes while it rebuilds"], advice: "REINDEX … CONCURRENTLY" },
            ];
        }
        case "LockStmt": {
            const lock = LOCK_MODES[(node.mode ?? 8) - 1] ?? "ACCESS EXCLUSIVE";
            return (node.relations ?? []).map((r: Node) => ({ table: relationName(r.RangeVar), lock, holds: "brief", reasons: [`LOCK TABLE IN ${lock} MODE`] }));
        }
        case "TruncateStmt":
            return (node.relations ?? []).map((r: Node) => ({ table: relationName(r.RangeVar), lock: "ACCESS EXCLUSIVE", holds: "brief", reasons: ["TRUNCATE empties the table"] }));
        case "DropStmt": {
            const objects: Node[] = node.objects ?? [];
            const names = objects.map((o) => (o.List?.items ?? []).map((i: Node) => i.String?.sval).join("."));
            if (node.removeType === "OBJECT_TABLE") return names.map((table) => ({ table, lock: "ACCESS EXCLUSIVE", holds: "brief", reasons: ["drops the table"] }));
            if (node.removeType === "OBJECT_INDEX") {
                return names.map((table) =>
                    node.concurrent
                        ? { table, lock: "SHARE UPDATE EXCLUSIVE", holds: "brief", reasons: ["drops the index concurrently"], outsideTransactionOnly: "DROP INDEX CONCURRENTLY" }
                        : { table, lock: "ACCESS EXCLUSIVE", holds: "brief", reasons: ["drops the index, locking its table briefly"] },
                );
            }
            return [];
        }
        case "RenameStmt":
            return node.relation ? [{ table: relationName(node.relation), lock: "ACCESS EXCLUSIVE", holds: "brief", reasons: ["renames in the catalog only"] }] : [];
        case "CreateTrigStmt":
            return [{ table: relationName(node.relation), lock: "SHARE ROW EXCLUSIVE", holds: "brief", reasons: ["creates a trigger"] }];
        case "UpdateStmt":
        case "DeleteStmt":
        case "InsertStmt": {
            const table = relationName(node.relation);
            const verb = kind === "UpdateStmt" ? "updates" : kind === "DeleteStmt" ? "deletes" : "inserts";
            return [{ table, lock: "ROW EXCLUSIVE", holds: "row writes", reasons: [`${verb} rows; the touched rows stay locked until commit`] }];
        }
        default:
            return [];
    }
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
