/**
 * Runs an operator or application command (alembic, the backfill, the
 * writers' pause/resume) for a step, as the one place where their output
 * meets Pulumi. Whatever the command prints:
 * - the password and the userinfo of any URL are scrubbed before anything
 *   is printed or written, so nothing depends on a provider redacting;
 * - Pulumi (and so the state) gets a summary: the first and last lines and a
 *   count; the whole scrubbed output goes to a 0600 log file when one is asked for;
 * - the step is bounded: past its timeout the command's process group is
 *   stopped, and so is it when this process is told to stop or dies (a
 *   provider cancels a step with SIGKILL).
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import { processLabel, profileEvent } from "../process/profileLog";
import { scrub } from "../process/scrub";

export { scrub, secretForms } from "../process/scrub";

export interface AppCommandOptions {
    /** What the step is, for messages: "alembic upgrade", "backfill". */
    label: string;
    /** Shell command, run with /bin/sh -c in `cwd`. */
    command: string;
    cwd: string;
    env: NodeJS.ProcessEnv;
    /** Strings never to print (the password and its URL-encoded form). */
    secrets: string[];
    timeoutMs: number;
    /** What sets the timeout, for the message: rollout:stepTimeout unless told (a rehearsal budget). */
    timeoutName?: string;
    /** Whole scrubbed output goes here (0600), when set. */
    logFile?: string;
    /** Lines of head and tail that reach Pulumi. */
    headLines?: number;
    tailLines?: number;
    /** Where the summary goes; stderr by default (stdout carries the result). */
    echo?: (line: string) => void;
}

export interface AppCommandResult {
    code: number;
    timedOut: boolean;
    /** The scrubbed stdout, capped: what parsers read for counts. */
    stdout: string;
    /** The last lines of stdout and stderr, scrubbed, for error messages. */
    tail: string;
    lines: number;
    millis: number;
    logFile?: string;
}

const STDOUT_CAP = 4 * 1024 * 1024;

/**
 * A detached shell that outlives this process: when it is gone (SIGKILL by a
 * provider that cancels the step, a crash), it stops the command's process
 * group, softly then hard. It is itself stopped when the command ends.
 */
function watchdogFor(pgid: number): ChildProcess {
    const script = 'while kill -0 "$1" 2>/dev/null; do sleep 0.2; done; kill -TERM -"$2" 2>/dev/null && sleep 3 && kill -KILL -"$2" 2>/dev/null; exit 0';
    const watchdog = spawn("/bin/sh", ["-c", script, "protea-step-watchdog", String(process.pid), String(pgid)], { detached: true, stdio: "ignore" });
    watchdog.unref();
    return watchdog;
}

/** Splits a stream into lines, holding back a partial last line. */
class LineSplitter {
    private rest = "";
    push(chunk: string, each: (line: string) => void): void {
        const parts = (this.rest + chunk).split("\n");
        this.rest = parts.pop() ?? "";
        for (const part of parts) each(part);
    }
    flush(each: (line: string) => void): void {
        if (this.rest !== "") each(this.rest);
        this.rest = "";
    }
}

export function runAppCommand(options: AppCommandOptions): Promise<AppCommandResult> {
    const echo = options.echo ?? ((line: string) => process.stderr.write(`${line}\n`));
    const headMax = options.headLines ?? 10;
    const tailMax = options.tailLines ?? 20;
    const started = Date.now();
    const log = options.logFile ? fs.openSync(options.logFile, "a", 0o600) : undefined;
    let lines = 0;
    let stdout = "";
    const tail: string[] = [];
    const recent: string[] = [];

    const onLine = (stream: "out" | "err") => (raw: string) => {
        const line = scrub(raw, options.secrets);
        lines++;
        if (log !== undefined) fs.writeSync(log, `${stream === "err" ? "! " : ""}${line}\n`);
        if (stream === "out" && stdout.length < STDOUT_CAP) stdout += `${line}\n`;
        recent.push(line);
        if (recent.length > 15) recent.shift();
        if (lines <= headMax) echo(`${options.label}: ${line}`);
        else {
            tail.push(line);
            if (tail.length > tailMax) tail.shift();
        }
    };

    return new Promise((resolve, reject) => {
        // Its own process group, so a timeout or a stop reaches every child.
        const child = spawn("/bin/sh", ["-c", options.command], { cwd: options.cwd, env: options.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
        const watchdog = child.pid ? watchdogFor(child.pid) : undefined;
        const out = new LineSplitter();
        const err = new LineSplitter();
        child.stdout.setEncoding("utf8").on("data", (c: string) => out.push(c, onLine("out")));
        child.stderr.setEncoding("utf8").on("data", (c: string) => err.push(c, onLine("err")));

        let timedOut = false;
        const stopGroup = (signal: NodeJS.Signals) => {
            try {
                if (child.pid) process.kill(-child.pid, signal);
            } catch {
                /* already gone */
            }
        };
        const stopSoftlyThenHard = () => {
            stopGroup("SIGTERM");
            setTimeout(() => stopGroup("SIGKILL"), 10_000).unref();
        };
        const timer = setTimeout(() => {
            timedOut = true;
            echo(`${options.label}: past ${options.timeoutName ?? `its timeout of ${Math.round(options.timeoutMs / 1000)} s (rollout:stepTimeout)`}; stopping it`);
            stopSoftlyThenHard();
        }, options.timeoutMs);
        const onSignal = (signal: NodeJS.Signals) => {
            echo(`${options.label}: ${signal} received; stopping the command`);
            stopSoftlyThenHard();
        };
        process.on("SIGTERM", onSignal);
        process.on("SIGINT", onSignal);

        child.on("error", (e) => {
            clearTimeout(timer);
            watchdog?.kill("SIGKILL");
            reject(new Error(`could not start ${options.label}: ${e.message}`));
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            watchdog?.kill("SIGKILL");
            process.off("SIGTERM", onSignal);
            process.off("SIGINT", onSignal);
            out.flush(onLine("out"));
            err.flush(onLine("err"));
            if (log !== undefined) fs.closeSync(log);
            const omitted = lines - headMax - tail.length;
            if (omitted > 0) echo(`${options.label}: … ${omitted} lines not shown${options.logFile ? ` (all ${lines} in ${options.logFile})` : ""}`);
            for (const line of tail) echo(`${options.label}: ${line}`);
            profileEvent(processLabel("/bin/sh", ["-c", options.command]), Date.now() - started);
            resolve({
                code: code ?? (signal ? 128 : 1),
                timedOut,
                stdout,
                tail: recent.join("\n"),
                lines,
                millis: Date.now() - started,
                logFile: options.logFile,
            });
        });
    });
}
