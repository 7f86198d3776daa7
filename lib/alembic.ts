/**
 * Reads alembic's view of the database (`current`) and of the checkout
 * (`heads`) by running the operator's alembic command in the application
 * checkout, and turns the runbook's "both must print …" into a verdict.
 */
import { runShell, tail } from "./processes";

const REVISION_LINE = /^([0-9a-f]{4,40})\b/;

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
            message: `the database is already at the target revision ${targetRevision} (alembic current = ${shown(current)}); the migration was applied outside this stack: reconcile with the deployer before running the rollout`,
        };
    }
    if (current.length !== 1 || current[0] !== expectedHead) {
        return {
            ...base,
            ok: false,
            message: `alembic current is ${shown(current)} but rollout:expectedHead is ${expectedHead}: stop and reconcile with the deployer`,
        };
    }
    if (heads.length !== 1 || heads[0] !== targetRevision) {
        return {
            ...base,
            ok: false,
            message: `alembic heads in the checkout is ${shown(heads)} but rollout:targetRevision is ${targetRevision} (on top of ${expectedHead}): deploy the application version that carries the migration, or reconcile with the deployer`,
        };
    }
    return { ...base, ok: true, message: `alembic current = ${expectedHead} (expected head); checkout head = ${targetRevision} (target)` };
}
