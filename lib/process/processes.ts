import { ChildProcess, spawn } from "node:child_process";
import { processLabel, profileEvent, profiling } from "./profileLog";

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

export interface RunOptions {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    /** A file descriptor to write stdout to instead of capturing it. */
    stdout?: number | "inherit";
    /** A file descriptor to feed stdin from. */
    stdin?: number;
}

/** Children still running, so a step that is stopped (timeout, signal) can stop them too. */
const running = new Set<ChildProcess>();

/** Stops every child `run` started that is still running. */
export function stopAllChildren(signal: NodeJS.Signals = "SIGTERM"): void {
    for (const child of running) child.kill(signal);
}

/**
 * Runs a program with arguments (no shell), capturing output. Never throws on
 * a non-zero exit; callers decide what a failure means.
 */
export function run(program: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(program, args, {
            cwd: options.cwd,
            env: options.env ?? process.env,
            stdio: [options.stdin ?? "ignore", options.stdout ?? "pipe", "pipe"],
        });
        running.add(child);
        child.on("exit", () => running.delete(child));
        let stdout = "";
        let stderr = "";
        child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("error", (err) => reject(new Error(`could not start ${program}: ${err.message}`)));
        const started = profiling() ? performance.now() : 0;
        child.on("close", (code, signal) => {
            if (started) profileEvent(processLabel(program, args), performance.now() - started);
            resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
        });
    });
}

/** Runs an operator-configured shell command (e.g. `poetry run alembic current`). */
export function runShell(commandLine: string, options: RunOptions = {}): Promise<RunResult> {
    return run("/bin/sh", ["-c", commandLine], options);
}

/** The last lines of a command's output, for error messages. */
export function tail(text: string, lines = 15): string {
    return text.trimEnd().split("\n").slice(-lines).join("\n");
}
