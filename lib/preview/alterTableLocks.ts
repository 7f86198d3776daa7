/** The locks of ALTER TABLE's commands: which rewrite or scan the table, ADD COLUMN's defaults and constraints included. */
import { LockHold, LockMode, LockSafetyContext, longer } from "./lockTerms";
import { functionCalls, Node } from "./migrationSql";

// Defaults calling these make ADD COLUMN rewrite the table (PostgreSQL 11+
// stores non-volatile defaults in the catalog instead).
const VOLATILE_FUNCTIONS = new Set([
    "random", "random_normal", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
    "clock_timestamp", "timeofday", "nextval", "setval", "txid_current", "pg_current_xact_id",
]);
const NON_VOLATILE_FUNCTIONS = new Set(["now", "transaction_timestamp", "statement_timestamp", "current_setting", "lower", "upper", "coalesce", "md5"]);
const SERIAL_TYPES = new Set(["serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"]);

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

export function alterTableCommand(cmd: Node, context: LockSafetyContext): { lock: LockMode; holds: LockHold; reason: string; advice?: string } {
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
