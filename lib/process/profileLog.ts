/**
 * Where a step's time goes, for bench/profile.ts: with PROTEA_PROFILE_LOG set
 * to a file, every child process the project's tools start and every tool run
 * appends one JSON line (what, milliseconds). Labels name the program and its
 * subcommand only, never arguments, so no secret or path reaches the file.
 * Unset (always, outside benchmarks), nothing is written.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const LOG = process.env.PROTEA_PROFILE_LOG;

export function profiling(): boolean {
    return Boolean(LOG);
}

export function profileEvent(what: string, millis: number, extra: Record<string, number> = {}): void {
    if (!LOG) return;
    try {
        fs.appendFileSync(LOG, `${JSON.stringify({ what, ms: Math.round(millis), pid: process.pid, at: Date.now(), ...extra })}\n`);
    } catch {
        /* a benchmark's log must never fail a step */
    }
}

/** `sh -c "cd … && poetry run alembic current"` -> "alembic current": the command's program and first word after it, no arguments. */
export function processLabel(program: string, args: string[]): string {
    let words = [path.basename(program), ...args];
    if (words[0] === "sh" && args[0] === "-c") {
        const last = (args[1] ?? "").split(/&&|;/).pop()!.trim();
        // Leading VAR=value assignments (quoted, or with escaped spaces) are not the program.
        words = last.replace(/^(?:[A-Z_][A-Z0-9_]*=(?:'[^']*'|"[^"]*"|\\.|\S)*\s+)*/, "").split(/\s+/);
        // `poetry run alembic current`, `.venv/bin/python script.py --dry-run`: keep the tool and its subcommand.
        while (words.length > 2 && /^(poetry|run|uv|exec|env|python[0-9.]*)$/.test(path.basename(words[0]))) words.shift();
        if (words[0] === "-m") words.shift();
    }
    return words
        .slice(0, 2)
        .map((w) => path.basename(w).replace(/[^A-Za-z0-9_.:-]/g, ""))
        .join(" ");
}

/** Runs `work` and logs its wall time as `what` (a no-op wrapper when not profiling). */
export async function profiled<T>(what: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
        return await work();
    } finally {
        profileEvent(what, performance.now() - started);
    }
}
