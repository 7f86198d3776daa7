/**
 * Reads alembic's view of the database (`current`) and of the checkout
 * (`heads`) by running the operator's alembic command in the application
 * checkout, and turns the runbook's "both must print …" into a verdict.
 */
import type { Client } from "pg";
import { VERSION_TABLE } from "../config/config";
import { runShell, tail } from "../process/processes";

// A revision id is whatever alembic accepts; its lines start with it ("<rev> (head)").
const REVISION_LINE = /^([A-Za-z0-9_]+)(?:\s+\([^)]*\))*$/;

/** Revision ids printed by `alembic current` or `alembic heads`, one per line. */
export function parseRevisions(output: string): string[] {
    return output
        .split("\n")
        .map((line) => REVISION_LINE.exec(line.trim())?.[1])
        .filter((rev): rev is string => rev !== undefined);
}

export async function alembicRevisions(alembic: string, appDir: string, subcommand: "current" | "heads", env: NodeJS.ProcessEnv): Promise<string[]> {
    const result = await runShell(`cd '${appDir.replace(/'/g, `'\\''`)}' && ${alembic} ${subcommand}`, { env });
    if (result.code !== 0) {
        throw new Error(`\`${alembic} ${subcommand}\` in ${appDir} failed (exit ${result.code}); fix rollout:alembic or rollout:appDir:\n${tail(result.stderr || result.stdout)}`);
    }
    return parseRevisions(result.stdout);
}

/**
 * `alembic current` without starting Python: the revisions in alembic's
 * version table, which is all `current` reports. No table (alembic never ran
 * here, or env.py names another one) reads as no revision, as `current`
 * prints nothing then; the gates stop on that, naming the table.
 */
export async function currentRevisions(client: Client, versionTable: string): Promise<string[]> {
    if (!VERSION_TABLE.test(versionTable)) throw new Error(`rollout:alembicVersionTable must be a table or schema.table name, got "${versionTable}"`);
    const quoted = versionTable.split(".").map((part) => `"${part}"`).join(".");
    const { rows } = await client.query<{ found: boolean }>("SELECT to_regclass($1) IS NOT NULL AS found", [quoted]);
    if (!rows[0].found) return [];
    const result = await client.query<{ version_num: string }>(`SELECT version_num FROM ${quoted} ORDER BY version_num`);
    return result.rows.map((r) => r.version_num);
}

export interface RevisionVerdict {
    ok: boolean;
    /** One line for the operator; on failure, what to do. */
    message: string;
    current: string[];
    heads: string[];
    alreadyAtTarget: boolean;
}

/**
 * The preflight gate. The database must be at `expectedHead`, and the checkout
 * must have exactly one head, `targetRevision` (the migration to apply). The
 * runbook asks for both commands to print the expected head "immediately
 * before the upgrade"; once the checkout carries the migration its head is the
 * target, so that is what is checked here.
 */
export function judgeRevisions(current: string[], heads: string[], expectedHead: string, targetRevision: string): RevisionVerdict {
    const shown = (revs: string[]) => (revs.length === 0 ? "(none)" : revs.join(", "));
    const base = { current, heads, alreadyAtTarget: false };
    if (current.length === 1 && current[0] === targetRevision) {
        return {
            ...base,
            ok: false,
            alreadyAtTarget: true,
            message: `the database is already at the target revision ${targetRevision} (alembic current = ${shown(current)}), but this stack has not applied it: it was applied outside this stack, or by a run that was interrupted (\`npm run recover -- --stack <name>\`); reconcile before running the rollout`,
        };
    }
    if (current.length !== 1 || current[0] !== expectedHead) {
        return {
            ...base,
            ok: false,
            message: `alembic current is ${shown(current)} but rollout:expectedHead is ${expectedHead}: stop and reconcile with the deployer`,
        };
    }
    if (!heads.includes(targetRevision)) {
        return {
            ...base,
            ok: false,
            message: `alembic heads in the checkout is ${shown(heads)}, which does not include rollout:targetRevision ${targetRevision} (on top of ${expectedHead}): deploy the application version that carries the migration, or reconcile with the deployer`,
        };
    }
    return { ...base, ok: true, message: `alembic current = ${expectedHead} (expected head); checkout heads include ${targetRevision} (target)` };
}

/** The rollback's gate: the database must be at the target (or already back at the expected head). */
export function judgeDowngrade(current: string[], expectedHead: string, targetRevision: string): { ok: boolean; alreadyDone: boolean; message: string } {
    const shown = current.length === 0 ? "(none)" : current.join(", ");
    if (current.length === 1 && current[0] === targetRevision) return { ok: true, alreadyDone: false, message: `alembic current = ${targetRevision} (target): downgrading to ${expectedHead}` };
    if (current.length === 1 && current[0] === expectedHead) return { ok: true, alreadyDone: true, message: `alembic current is already ${expectedHead} (expected head): nothing to downgrade` };
    return {
        ok: false,
        alreadyDone: false,
        message: `alembic current is ${shown}, neither rollout:targetRevision ${targetRevision} nor rollout:expectedHead ${expectedHead}: the database moved outside this rollout; nothing was downgraded. Reconcile with the deployer`,
    };
}
