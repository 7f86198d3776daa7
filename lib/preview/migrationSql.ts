/**
 * Migration SQL read by PostgreSQL's own grammar (libpg_query, PostgreSQL 16, compiled to
 * WebAssembly): its statements, each as one line of text, and the functions an expression calls.
 */
// Quoting, comments, dollar quotes and multi-command ALTER TABLEs read as the server reads them.
import { loadModule, parseSync } from "libpg-query";

/** Raised when the SQL does not parse; says where. */
export class SqlParseError extends Error {
    constructor(message: string, readonly position?: number) {
        super(`the migration SQL does not parse with PostgreSQL's grammar: ${message}${position !== undefined && position >= 0 ? ` (at character ${position})` : ""}`);
        this.name = "SqlParseError";
    }
}

// PostgreSQL's parse tree as libpg_query's JSON: read field by field, as the
// server's node types name them (IndexStmt.concurrent, AlterTableCmd.subtype, …).
export type Node = any;

interface Parser {
    parseSync(sql: string): { version: number; stmts?: { stmt: Node; stmt_location?: number; stmt_len?: number }[] };
}

let parserLoad: Promise<Parser> | undefined;

/** Instantiates libpg_query's WebAssembly module once (about 20 ms). */
export function loadParser(): Promise<Parser> {
    parserLoad ??= loadModule().then(() => ({ parseSync }));
    return parserLoad;
}

export interface ParsedStatement {
    node: Node;
    kind: string;
    text: string;
}

export function parseStatements(parser: Parser, sql: string): { version: number; statements: ParsedStatement[] } {
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

function funcName(call: Node): string {
    const names: Node[] = call.funcname ?? [];
    return String(names[names.length - 1]?.String?.sval ?? "?").toLowerCase();
}

/** Every function called anywhere in an expression tree. */
export function functionCalls(expr: Node, found: string[] = []): string[] {
    if (Array.isArray(expr)) {
        for (const item of expr) functionCalls(item, found);
    } else if (expr && typeof expr === "object") {
        if (expr.FuncCall) found.push(funcName(expr.FuncCall));
        for (const value of Object.values(expr)) functionCalls(value, found);
    }
    return found;
}
