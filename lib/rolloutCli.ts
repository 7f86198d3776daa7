/**
 * The command line that runs one of the project's CLIs (bin/) from a command
 * resource. They run compiled (.state/tools, built by scripts/build-tools.sh),
 * which starts in a tenth of the time ts-node takes; paths are absolute
 * because commands run in other directories (the application checkout).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT } from "./projectRoot";
import { commandLine } from "./shell";

export const TOOLS_DIR = path.join(PROJECT_ROOT, ".state", "tools");

/** Runs `bin/<script>` (e.g. `rollout.ts`, `drill-db.ts`), compiled. */
export function projectCommand(script: string, subcommand: string, ...args: (string | number)[]): string {
    return commandLine(process.execPath, path.join(TOOLS_DIR, "bin", script.replace(/\.ts$/, ".js")), subcommand, ...args);
}

export function rolloutCommand(subcommand: string, ...args: (string | number)[]): string {
    return projectCommand("rollout.ts", subcommand, ...args);
}

/** An error message when the compiled CLIs are missing, else undefined. */
export function missingTools(): string | undefined {
    if (fs.existsSync(path.join(TOOLS_DIR, "bin", "rollout.js"))) return undefined;
    return `the rollout's command-line tools are not built (${TOOLS_DIR}): run \`npm run setup\`; \`npm run pulumi\`, \`npm run drill\` and \`npm test\` build them too`;
}

/** Parses the one JSON line a `rollout` subcommand prints on success. */
export function parseRolloutResult<T>(stdout: string): T {
    const last = stdout.trim().split("\n").pop() ?? "";
    return JSON.parse(last) as T;
}
