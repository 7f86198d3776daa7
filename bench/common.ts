/**
 * What the benchmark scripts share: flags with `--help` (lib/process/cliOptions.ts),
 * `bench:` progress lines on stderr, medians, the machine's load, a plain
 * text table, and temporary paths that go away however the script ends.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { cliHelp, CliSpec, CliUsageError, parseCli } from "../lib/process/cliOptions";
import { runShell, tail } from "../lib/process/processes";

/** One progress line on stderr; stdout is kept for the final summary. */
export function say(line: string): void {
    process.stderr.write(`bench: ${line}\n`);
}

/** A benchmark's flag: a whole number of at least `min`, or a string; its default and what it does are in the help. */
export type BenchFlag = { readonly description: string; readonly value?: string } & ({ readonly default: number; readonly min: number } | { readonly default: string });
export type BenchFlags = Readonly<Record<string, BenchFlag>>;
export type BenchValues<S extends BenchFlags> = { [K in keyof S]: S[K]["default"] extends number ? number : string };

/** A benchmark's command line: how it is run, what it does (paragraphs), its flags. */
export interface BenchCli<S extends BenchFlags> {
    readonly usage: string;
    readonly description: string;
    readonly flags: S;
}

function cliOf(cli: BenchCli<BenchFlags>): CliSpec {
    const options = Object.fromEntries(
        Object.entries(cli.flags).map(([name, f]) => [name, { type: "string" as const, value: f.value ?? (typeof f.default === "number" ? "N" : "VALUE"), default: String(f.default), description: f.description }]),
    );
    return { usage: cli.usage, description: cli.description, options };
}

/** The benchmark's `--help` text, made from its flags (lib/process/cliOptions.ts). */
export function benchHelp(cli: BenchCli<BenchFlags>): string {
    return cliHelp(cliOf(cli));
}

/** Reads `--name value` flags (`--help` prints the help and exits 0); a bad flag exits 2 naming it, with the help. */
export function benchFlags<S extends BenchFlags>(cli: BenchCli<S>): BenchValues<S> {
    const fail = (message: string): never => {
        process.stderr.write(`${message}\n`);
        process.exit(2);
    };
    const spec = cliOf(cli);
    let given: Record<string, string | boolean | undefined> = {};
    try {
        const parsed = parseCli(process.argv.slice(2), spec);
        if (parsed === "help") {
            process.stdout.write(`${cliHelp(spec)}\n`);
            process.exit(0);
        }
        given = parsed;
    } catch (err) {
        if (!(err instanceof CliUsageError)) throw err;
        fail(err.message);
    }
    const values: Record<string, string | number> = {};
    for (const [name, wanted] of Object.entries(cli.flags)) {
        const text = String(given[name]);
        if (!("min" in wanted)) {
            values[name] = text;
            continue;
        }
        const value = Number(text);
        if (text.trim() === "" || !Number.isInteger(value) || value < wanted.min) fail(`--${name} must be a whole number of at least ${wanted.min}, got "${text}"\n\n${cliHelp(spec)}`);
        values[name] = value;
    }
    return values as BenchValues<S>;
}

/** Runs a shell command with `extra` in its environment; a failure throws, naming `what`, with the end of its output. */
export async function must(what: string, command: string, extra: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
    const result = await runShell(command, { env: { ...process.env, ...extra } });
    if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${tail(result.stderr || result.stdout)}`);
    return result;
}

export function median(values: readonly number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The load average over 1, 5 and 15 minutes, "1.06 1.17 1.36": other work on the machine skews every figure. */
export function loadAverage(): string {
    return os.loadavg().map((n) => n.toFixed(2)).join(" ");
}

/** For a summary: the cores, and the load average at the start (`before`, from {@link loadAverage}) and now. */
export function machineLine(before: string): string {
    return `${os.cpus().length} cores; load average (1, 5, 15 min) ${before} at the start, ${loadAverage()} at the end`;
}

/** Rows of cells as left-aligned columns, the first row a header. */
export function table(rows: readonly (readonly string[])[]): string {
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
    return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ")).join("\n");
}

const leftovers = new Set<string>();
const exitHooks = new Set<() => void>();

/**
 * Runs `cleanup` (synchronous: spawnSync, rmSync) when the process exits,
 * also on SIGINT/SIGTERM/SIGHUP, before the paths of {@link removeOnExit} go;
 * the last registered runs first. For what outlives the process by design
 * (a detached server, a container). Returns a function that forgets it, for
 * when the thing was cleaned up the ordinary way.
 */
export function cleanupOnExit(cleanup: () => void): () => void {
    exitHooks.add(cleanup);
    return () => void exitHooks.delete(cleanup);
}

/**
 * Removes `file` (a directory recursively) when the process exits, also on
 * SIGINT/SIGTERM/SIGHUP, where `finally` blocks never run. Clusters have the
 * same safety net in lib/postgres/cluster/watchdog.ts. Returns `file`.
 */
export function removeOnExit(file: string): string {
    leftovers.add(file);
    return file;
}

/** Removes it now (and forgets it). */
export function removeNow(file: string): void {
    fs.rmSync(file, { recursive: true, force: true });
    leftovers.delete(file);
}

process.on("exit", () => {
    for (const cleanup of [...exitHooks].reverse()) {
        try {
            cleanup();
        } catch {
            // Best effort while the process is going away.
        }
    }
    exitHooks.clear();
    for (const file of leftovers) fs.rmSync(file, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    // Exiting runs the "exit" handlers: these paths, and the throwaway clusters (lib/postgres/cluster/watchdog.ts).
    process.on(signal, () => {
        say(`${signal}: cleaning up`);
        process.exit(128 + os.constants.signals[signal]);
    });
}
