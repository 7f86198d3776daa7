/** Running child processes (no shell unless asked), their output, and whether a pid still runs. */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { processLabel, profileEvent, profiling } from "./profileLog";

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    /** The signal that ended the program, if one did (then `code` is 128). */
    signal?: NodeJS.Signals;
}

export interface RunOptions {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    /** A file descriptor to write stdout to instead of capturing it. */
    stdout?: number | "inherit";
    /** A file descriptor to feed stdin from. */
    stdin?: number;
    /** Also show the output, whole lines at a time, on this process's stdout and stderr (and so through its scrubber); "stderr": only the progress on stderr. */
    show?: boolean | "stderr";
    /** In a process group of its own: a Ctrl-C at the terminal does not reach it. */
    detached?: boolean;
}

/** Writes text to `stream` whole lines at a time, so what filters the stream sees each line whole. */
export function lineForwarder(stream: NodeJS.WritableStream): { push(text: string): void; flush(): void } {
    let rest = "";
    return {
        push(text: string) {
            const lines = rest + text;
            const cut = lines.lastIndexOf("\n") + 1;
            if (cut > 0) stream.write(lines.slice(0, cut));
            rest = lines.slice(cut);
        },
        flush() {
            if (rest) stream.write(rest);
            rest = "";
        },
    };
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
            detached: options.detached,
        });
        running.add(child);
        child.on("exit", () => running.delete(child));
        let stdout = "";
        let stderr = "";
        const shown = options.show ? { out: options.show === true ? lineForwarder(process.stdout) : undefined, err: lineForwarder(process.stderr) } : undefined;
        child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
            stdout += chunk;
            shown?.out?.push(chunk);
        });
        child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
            stderr += chunk;
            shown?.err.push(chunk);
        });
        child.on("error", (err) => reject(new Error(`could not start ${program}: ${err.message}`)));
        const started = profiling() ? performance.now() : 0;
        child.on("close", (code, signal) => {
            shown?.out?.flush();
            shown?.err.flush();
            if (started) profileEvent(processLabel(program, args), performance.now() - started);
            resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, ...(signal ? { signal } : {}) });
        });
    });
}

/** As `run`, but rejects when the program fails, with its exit status and the tail of its output. */
export async function runOrThrow(program: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
    const result = await run(program, args, options);
    if (result.code === 0) return result;
    const status = result.signal ? `signal ${result.signal}` : `exit code ${result.code}`;
    throw new Error(`${path.basename(program)} ${args[0] ?? ""} failed (${status}):\n${tail(result.stderr || result.stdout, 20)}`);
}

/** Runs an operator-configured shell command (e.g. `poetry run alembic current`). */
export function runShell(commandLine: string, options: RunOptions = {}): Promise<RunResult> {
    return run("/bin/sh", ["-c", commandLine], options);
}

/** The last lines of a command's output, for error messages. */
export function tail(text: string, lines = 15): string {
    return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** True while `pid` runs; a zombie counts as gone (PID 1 here may never reap it). */
export function isProcessAlive(pid: number): boolean {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        return state !== "Z" && state !== "X";
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    }
    try {
        process.kill(pid, 0);
        return true;
    } catch (error) {
        return (error as NodeJS.ErrnoException).code === "EPERM";
    }
}

/** Polls `condition` every 50 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (condition()) return true;
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return condition();
}
