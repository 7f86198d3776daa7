/**
 * The command line that runs one of the project's CLIs (bin/) from a command
 * resource. Stored commands name the tool only (`protea-rollout …`), never a
 * path of this checkout, of node or of this machine: the state must stay
 * usable from another checkout, a moved folder or another machine sharing the
 * backend. `npm run pulumi` (scripts/engine-env.sh) puts the compiled tools'
 * launchers (.state/tools/path, built by scripts/build-tools.sh) on PATH.
 */
import { DEFAULT_VERSION_TABLE } from "../config/config";
import { commandLine } from "../process/shell";

/** bin/<script>.ts -> the launcher's name on PATH. */
const LAUNCHERS: Record<string, string> = { "rollout.ts": "protea-rollout", "drill-db.ts": "protea-drill-db" };

/**
 * Runs `bin/<script>` through its launcher found on PATH at run time; when it
 * is missing, the step fails saying how to get it, before anything runs.
 */
export function projectCommand(script: string, subcommand: string, ...args: (string | number)[]): string {
    const tool = LAUNCHERS[script];
    if (!tool) throw new Error(`no launcher for bin/${script}`);
    const missing = `echo "${tool} is not on PATH: run pulumi through \\\`npm run pulumi\\\` (or add <checkout>/.state/tools/path to PATH)" >&2; exit 127`;
    return `command -v ${tool} >/dev/null 2>&1 || { ${missing}; }; ${commandLine(tool, subcommand, ...args)}`;
}

export function rolloutCommand(subcommand: string, ...args: (string | number)[]): string {
    return projectCommand("rollout.ts", subcommand, ...args);
}

/** rollout:alembicVersionTable as a `rollout` option; none for alembic's default, so stored commands stay as they were. */
export function versionTableArgs(table: string): string[] {
    return table === DEFAULT_VERSION_TABLE ? [] : ["--version-table", table];
}

/** Where the client tools run, as `rollout` options (backup, preflight, probe). */
export function clientToolArgs(target: { pgAccess: string; container: string; dbUser: string; dbName: string }): string[] {
    return ["--access", target.pgAccess, "--container", target.container, "--db-user", target.dbUser, "--db-name", target.dbName];
}

/** Parses the one JSON line a `rollout` subcommand prints on success. */
export function parseRolloutResult<T>(stdout: string): T {
    const last = stdout.trim().split("\n").pop() ?? "";
    return JSON.parse(last) as T;
}
