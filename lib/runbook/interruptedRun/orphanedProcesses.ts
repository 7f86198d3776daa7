/**
 * The processes a killed run left behind (language hosts, providers, the
 * program and all they started), found without touching a live run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { isListening, listeningSockets, TcpSocket } from "./listeningSockets";
import { isPulumiCli, ProcessEntry, readProcessTable } from "./processTable";

// What the engine (CLI v3.248.0) runs, observed here:
// `pulumi-language-<rt> 127.0.0.1:<engine port>` and
// `pulumi-resource-<pkg> 127.0.0.1:<engine port>` (optional `--logtostderr`,
// `-v=N`, `--tracing X` before the address), the program
// (`node …/@pulumi/pulumi/cmd/run/index.js --monitor A --engine A --pwd DIR …`)
// under the language host, and whatever the providers run. All start with
// the program directory as cwd; the CLI listens on the engine port.

/**
 * `language-host`: pulumi-language-*; `provider`: pulumi-resource-*;
 * `plugin`: other pulumi-* plugins (analyzer, converter, tool); `program`:
 * the Pulumi program the language host started (it has `--engine`);
 * `descendant`: anything those started (sh -c, pg_dump, python, …).
 */
export type EngineRole = "language-host" | "provider" | "plugin" | "program" | "descendant";

export interface OrphanedProcess {
    pid: number;
    ppid: number;
    pgid: number;
    startTicks: number;
    role: EngineRole;
    /** Executable basename, safe to print. */
    program: string;
    /** Safe to print. */
    argCount: number;
    /** The full command line: it may hold secrets, never print it. */
    argv: string[];
    cwd: string | null;
    /** The dead CLI's engine address shared by the whole interrupted run. */
    engineAddress: string;
    /** The stack, when the run's program process is still there to say. */
    stack: string | null;
}

// Interpreters that run a plugin given as a script (`node pulumi-resource-x`).
const INTERPRETERS = /^(node|nodejs|python[0-9.]*|sh|bash|dash)$/;

function pluginName(argv: string[]): string {
    const first = path.basename(argv[0] ?? "");
    if (INTERPRETERS.test(first) && argv[1] && !argv[1].startsWith("-")) return path.basename(argv[1]);
    return first;
}

/** Which part of a Pulumi run a command line is, or null for anything else. */
export function engineRoleOf(argv: string[]): Exclude<EngineRole, "descendant"> | null {
    const name = pluginName(argv);
    // pulumi-language-python-exec is the program's launcher, not a language host.
    if (name.startsWith("pulumi-language-") && !name.endsWith("-exec")) return "language-host";
    if (name.startsWith("pulumi-resource-")) return "provider";
    if (/^pulumi-(analyzer|converter|tool)-/.test(name)) return "plugin";
    if (argValue(argv, "--engine") !== null && argValue(argv, "--monitor") !== null) return "program";
    return null;
}

function argValue(argv: string[], flag: string): string | null {
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === flag && i + 1 < argv.length) return argv[i + 1];
        if (argv[i].startsWith(`${flag}=`)) return argv[i].slice(flag.length + 1);
    }
    return null;
}

const HOST_PORT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/**
 * The engine's gRPC address in a plugin's or program's command line: the
 * program's `--engine`, else a plugin's last `host:port` argument (the CLI
 * puts it last, after `--logtostderr`, `-v=N`, `--tracing X`).
 */
export function engineAddressOf(argv: string[]): string | null {
    const engine = argValue(argv, "--engine");
    if (engine !== null) return HOST_PORT.test(engine) ? engine : null;
    for (let i = argv.length - 1; i >= 1; i--) {
        if (argv[i - 1] === "--tracing") continue; // an endpoint, not the engine
        if (HOST_PORT.test(argv[i])) return argv[i];
    }
    return null;
}

/** The project directory a run's process says it belongs to, if it says so. */
function declaredProjectDir(argv: string[]): string | null {
    return argValue(argv, "--pwd") ?? argValue(argv, "-root") ?? argValue(argv, "--root");
}

function sameDir(a: string | null, b: string): boolean {
    return a !== null && path.resolve(a) === b;
}

/**
 * The pure core of findOrphanedEngineProcesses. A language host, provider,
 * plugin or program is orphaned when both hold:
 * - nothing listens on its engine address any more (the CLI is gone), and
 * - no ancestor is a `pulumi` CLI (it was reparented, e.g. to init).
 * Either alone would do for an orphan; asking for both keeps a live run safe
 * from a reused port and from the moment a CLI closes its engine at the end.
 * It is this project's when its cwd is projectDir or its `--pwd`/`-root`
 * says so. Every live descendant of an orphan is included, except the subtree
 * of a nested `pulumi` CLI (another, live run). Detached daemons (e.g. a
 * postmaster started by `pg_ctl`) are not descendants and are left alone.
 */
export function selectOrphanedEngineProcesses(table: ProcessEntry[], listening: TcpSocket[], projectDir: string): OrphanedProcess[] {
    const dir = path.resolve(projectDir);
    const byPid = new Map(table.map((p) => [p.pid, p]));
    const children = new Map<number, ProcessEntry[]>();
    for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);

    const hasCliAncestor = (p: ProcessEntry): boolean => {
        const seen = new Set<number>();
        for (let q = byPid.get(p.ppid); q && !seen.has(q.pid); q = byPid.get(q.ppid)) {
            if (isPulumiCli(q)) return true;
            seen.add(q.pid);
        }
        return false;
    };

    const roots: { proc: ProcessEntry; role: Exclude<EngineRole, "descendant">; engineAddress: string }[] = [];
    for (const proc of table) {
        if (proc.state === "Z") continue;
        const role = engineRoleOf(proc.argv);
        const engineAddress = role && engineAddressOf(proc.argv);
        if (!role || !engineAddress) continue;
        if (!sameDir(proc.cwd, dir) && !sameDir(declaredProjectDir(proc.argv), dir)) continue;
        if (isListening(engineAddress, listening) || hasCliAncestor(proc)) continue;
        roots.push({ proc, role, engineAddress });
    }

    // The program names its stack; the rest of its run shares the engine address.
    const stackByEngine = new Map<string, string>();
    for (const r of roots) {
        const stack = r.role === "program" ? argValue(r.proc.argv, "--stack") : null;
        if (stack) stackByEngine.set(r.engineAddress, stack);
    }

    const found = new Map<number, OrphanedProcess>();
    const add = (p: ProcessEntry, role: EngineRole, engineAddress: string) => {
        // Roots are added first, so a program (also a descendant of its
        // language host) keeps its own role.
        if (found.has(p.pid)) return;
        found.set(p.pid, {
            pid: p.pid,
            ppid: p.ppid,
            pgid: p.pgid,
            startTicks: p.startTicks,
            role,
            program: p.program,
            argCount: Math.max(0, p.argv.length - 1),
            argv: p.argv,
            cwd: p.cwd,
            engineAddress,
            stack: stackByEngine.get(engineAddress) ?? null,
        });
    };
    for (const r of roots) add(r.proc, r.role, r.engineAddress);
    for (const r of roots) {
        const stack = [...(children.get(r.proc.pid) ?? [])];
        while (stack.length > 0) {
            const child = stack.pop()!;
            if (child.state === "Z" || isPulumiCli(child)) continue;
            add(child, "descendant", r.engineAddress);
            stack.push(...(children.get(child.pid) ?? []));
        }
    }
    return [...found.values()].sort((a, b) => a.pid - b.pid);
}

/**
 * Processes of an interrupted run of the Pulumi project in projectDir whose
 * CLI is gone: language hosts, providers, the program and all they started.
 * Never a process of a live run (see selectOrphanedEngineProcesses).
 */
export function findOrphanedEngineProcesses(projectDir: string): OrphanedProcess[] {
    let dir = path.resolve(projectDir);
    try {
        dir = fs.realpathSync(dir); // /proc/<pid>/cwd shows the resolved path
    } catch {
        // A missing directory matches no process; nothing to resolve.
    }
    return selectOrphanedEngineProcesses(readProcessTable(), listeningSockets(), dir);
}

/** One line about a process, safe to print: no arguments, they may hold secrets. */
export function describeProcess(p: Pick<OrphanedProcess, "pid" | "role" | "program" | "argCount" | "cwd">): string {
    const args = `${p.argCount} arg${p.argCount === 1 ? "" : "s"}`;
    return `pid ${p.pid} ${p.role} ${p.program} (${args})${p.cwd ? `, cwd ${p.cwd}` : ""}`;
}
