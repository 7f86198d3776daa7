/**
 * The command line that runs `bin/rollout.ts` from a command resource. Paths
 * are absolute because commands run in other directories (the application
 * checkout); the TypeScript is transpiled on the fly, without type checks,
 * which keeps each gate's start-up under a second.
 */
import * as path from "node:path";
import { commandLine } from "./shell";

const PROJECT_ROOT = path.resolve(__dirname, "..");

/** Runs one of the project's CLIs in bin/ (`rollout.ts`, `drill-db.ts`). */
export function projectCommand(script: string, subcommand: string, ...args: (string | number)[]): string {
    return commandLine(process.execPath, "-r", require.resolve("ts-node/register/transpile-only"), path.join(PROJECT_ROOT, "bin", script), subcommand, ...args);
}

export function rolloutCommand(subcommand: string, ...args: (string | number)[]): string {
    return projectCommand("rollout.ts", subcommand, ...args);
}

/** Parses the one JSON line a `rollout` subcommand prints on success. */
export function parseRolloutResult<T>(stdout: string): T {
    const last = stdout.trim().split("\n").pop() ?? "";
    return JSON.parse(last) as T;
}
