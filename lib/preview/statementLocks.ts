/**
 * What each kind of statement locks, and for how long, following the PostgreSQL 16 documentation
 * ("Explicit Locking", ALTER TABLE, CREATE INDEX).
 */
// Without the catalog some answers are "may": an ALTER COLUMN TYPE between
// binary-compatible types does not rewrite, which the SQL alone cannot tell.
import { alterTableCommand } from "./alterTableLocks";
import { LOCK_MODES, LockHold, LockMode, LockSafetyContext, LockTaken, longer, stronger } from "./lockTerms";
import type { Node } from "./migrationSql";

const relationName = (rangeVar: Node): string => (rangeVar?.schemaname ? `${rangeVar.schemaname}.${rangeVar.relname}` : String(rangeVar?.relname ?? "?"));

/** The locks a statement of this kind (the parse tree's node type) takes. */
export function statementLocks(kind: string, node: Node, context: LockSafetyContext): LockTaken[] {
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
