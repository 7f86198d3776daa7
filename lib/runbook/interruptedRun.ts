/**
 * Plumbing to recover a stack after a `pulumi up`/`destroy` whose CLI was
 * killed (SIGKILL, OOM, a closed terminal): the stale lock in a file://
 * backend, the orphaned language host / program / provider plugins and their
 * children, and the pending operations left in the state.
 *
 * No CLI and no database logic here: bin/recover.ts decides what to do and
 * what to print. Linux only (/proc).
 *
 * What the engine (CLI v3.248.0) leaves behind, observed here:
 * - lock: `<backend>/.pulumi/locks/organization/<project>/<stack>/<uuid>.json`
 *   (`.pulumi/locks/<stack>/` for a backend without project layout), holding
 *   `{"pid","username","hostname","timestamp"}`, plus a `.json.attrs` sidecar
 *   written by the blob library.
 * - processes: `pulumi-language-<rt> 127.0.0.1:<engine port>` and
 *   `pulumi-resource-<pkg> 127.0.0.1:<engine port>` (optional `--logtostderr`,
 *   `-v=N`, `--tracing X` before the address), the program
 *   (`node …/@pulumi/pulumi/cmd/run/index.js --monitor A --engine A --pwd DIR …`)
 *   under the language host, and whatever the providers run. All start with
 *   the program directory as cwd; the CLI listens on the engine port.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

// ---------------------------------------------------------------------------
// The stack lock (file:// backends)
// ---------------------------------------------------------------------------

/** What the CLI writes into a lock file. */
export interface LockInfo {
    pid: number;
    username: string;
    hostname: string;
    /** ISO 8601, as the CLI wrote it (nanosecond precision). */
    timestamp: string;
}

/**
 * Whether the lock's holder still runs: `alive` (same host, the pid is a
 * `pulumi` process started before the lock), `gone` (no such process, or the
 * pid now belongs to something else), `other-host` (cannot be checked from
 * here), `unreadable` (the lock file is not what the CLI writes).
 */
export type LockHolderState = "alive" | "gone" | "other-host" | "unreadable";

export interface LockHolder {
    state: LockHolderState;
    /** Why, in a sentence for the operator. */
    detail: string;
}

export interface StackLock {
    /** The lock file. */
    path: string;
    /** The blob library's metadata sidecar (`<path>.attrs`), if present. */
    attrsPath: string | null;
    /** null when the file could not be parsed; see holder.detail. */
    info: LockInfo | null;
    holder: LockHolder;
}

export type StackLockReport =
    | {
          inspectable: true;
          backendDir: string;
          layout: BackendLayout;
          lockDir: string;
          /** Empty when the stack is not locked. */
          locks: StackLock[];
      }
    | {
          inspectable: false;
          /** The backend's scheme only (a URL may carry credentials). */
          scheme: string;
          reason: string;
      };

/** `project`: meta.yaml version 1 (stacks per project); `legacy`: version 0. */
export type BackendLayout = "project" | "legacy";

/** The organization a DIY backend puts in every fully qualified stack name. */
const DIY_ORGANIZATION = "organization";

/**
 * The directory a file:// backend URL points at, or null for any other
 * backend. Follows the CLI: `~` is the home directory, a query
 * (`?no_tmp_dir=true`) is not part of the path, a relative path is taken
 * from the current directory.
 */
export function backendDirectory(backendUrl: string, homeDir = os.homedir(), cwd = process.cwd()): string | null {
    if (!backendUrl.startsWith("file://")) return null;
    let dir = decodeURIComponent(backendUrl.slice("file://".length).replace(/[?#].*$/, ""));
    if (dir === "~" || dir.startsWith("~/")) dir = path.join(homeDir, dir.slice(1));
    return path.resolve(cwd, dir || ".");
}

/** Reads `.pulumi/meta.yaml`: version 1 means the per-project layout. */
export function backendLayout(backendDir: string): BackendLayout {
    let text: string;
    try {
        text = fs.readFileSync(path.join(backendDir, ".pulumi", "meta.yaml"), "utf8");
    } catch {
        // No meta.yaml: a backend written before project layout existed.
        return "legacy";
    }
    return parseMetaVersion(text) >= 1 ? "project" : "legacy";
}

/** The `version:` of a backend's meta.yaml (0 when absent). */
export function parseMetaVersion(metaYaml: string): number {
    const match = /^version:\s*(\d+)\s*$/m.exec(metaYaml);
    return match ? Number(match[1]) : 0;
}

/**
 * Where the CLI keeps a stack's lock files. `stack` may be `name`,
 * `project/name` or `organization/project/name`, as `--stack` accepts.
 */
export function stackLockDirectory(backendDir: string, layout: BackendLayout, project: string, stack: string): string {
    const parts = stack.split("/");
    if (parts.some((p) => p === "" || p === "." || p === "..") || parts.length > 3) {
        throw new Error(`"${stack}" is not a stack name: use name, project/name or organization/project/name`);
    }
    const locks = path.join(backendDir, ".pulumi", "locks");
    const name = parts[parts.length - 1];
    if (layout === "legacy") return path.join(locks, name);
    const stackProject = parts.length >= 2 ? parts[parts.length - 2] : project;
    const organization = parts.length === 3 ? parts[0] : DIY_ORGANIZATION;
    return path.join(locks, organization, stackProject, name);
}

/** Parses a lock file's JSON; throws saying what is wrong with it. */
export function parseLockFile(text: string): LockInfo {
    let raw: unknown;
    try {
        raw = JSON.parse(text);
    } catch (err) {
        throw new Error(`not JSON (${(err as Error).message})`);
    }
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new Error("not a JSON object");
    const { pid, username, hostname, timestamp } = raw as Record<string, unknown>;
    if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) throw new Error("no positive integer pid");
    if (typeof hostname !== "string" || hostname === "") throw new Error("no hostname");
    if (typeof timestamp !== "string" || Number.isNaN(Date.parse(timestamp))) throw new Error("no valid timestamp");
    return { pid, username: typeof username === "string" ? username : "", hostname, timestamp };
}

/**
 * Finds the lock file(s) of a stack in a file:// backend and checks whether
 * each holder still runs. Other backends cannot be inspected from here: the
 * caller should have the operator run `pulumi cancel --stack <stack>`.
 */
export function findStackLock(backendUrl: string, project: string, stack: string): StackLockReport {
    const backendDir = backendDirectory(backendUrl);
    if (backendDir === null) {
        const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(backendUrl)?.[1] ?? (backendUrl ? "unknown" : "none");
        return {
            inspectable: false,
            scheme,
            reason:
                scheme === "none"
                    ? "no backend URL given; the CLI then uses the backend of `pulumi login`, whose locks only `pulumi cancel` can clear"
                    : `locks in a ${scheme} backend are not files on this machine; \`pulumi cancel --stack ${stack}\` clears them`,
        };
    }
    const layout = backendLayout(backendDir);
    const lockDir = stackLockDirectory(backendDir, layout, project, stack);
    let names: string[];
    try {
        names = fs.readdirSync(lockDir);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return { inspectable: true, backendDir, layout, lockDir, locks: [] };
        throw new Error(`cannot list ${lockDir}: ${(err as Error).message}`);
    }
    const locks = names
        .filter((name) => name.endsWith(".json"))
        .sort()
        .map((name) => readStackLock(path.join(lockDir, name)));
    return { inspectable: true, backendDir, layout, lockDir, locks };
}

function readStackLock(lockPath: string): StackLock {
    const attrsPath = fs.existsSync(`${lockPath}.attrs`) ? `${lockPath}.attrs` : null;
    let info: LockInfo;
    try {
        info = parseLockFile(fs.readFileSync(lockPath, "utf8"));
    } catch (err) {
        return { path: lockPath, attrsPath, info: null, holder: { state: "unreadable", detail: `${lockPath} is not a Pulumi lock file: ${(err as Error).message}` } };
    }
    return { path: lockPath, attrsPath, info, holder: lockHolderStatus(info) };
}

/**
 * Whether the process that wrote a lock still runs on this host. A pid that
 * now belongs to another program, or to a `pulumi` started after the lock was
 * written, does not hold the lock.
 */
export function lockHolderStatus(info: LockInfo, thisHost = os.hostname()): LockHolder {
    if (info.hostname !== thisHost) {
        return { state: "other-host", detail: `held by pid ${info.pid} on host ${info.hostname}, not this host (${thisHost}): check there whether it still runs` };
    }
    const proc = readProcess(info.pid);
    if (proc === null) return { state: "gone", detail: `pid ${info.pid} no longer runs` };
    if (!isPulumiCli(proc)) return { state: "gone", detail: `pid ${info.pid} now belongs to ${proc.program}, not a pulumi CLI` };
    const started = processStartDate(proc.startTicks);
    // The CLI writes the lock after it starts; a later start is a reused pid.
    // Two seconds of slack: boot time is whole seconds, start time in ticks.
    if (started !== null && started.getTime() > Date.parse(info.timestamp) + 2000) {
        return { state: "gone", detail: `pid ${info.pid} is a pulumi CLI started after the lock was written (${started.toISOString()}): a different run` };
    }
    return { state: "alive", detail: `pid ${info.pid} (pulumi) still runs on this host` };
}

/**
 * Removes a lock file (and its `.attrs` sidecar) whose holder no longer runs.
 * The holder is checked again now, not trusted from `lock`. Refuses a live,
 * unverifiable or unreadable lock. Returns the removed paths.
 */
export function clearStaleLock(lock: StackLock): string[] {
    let info: LockInfo;
    try {
        info = parseLockFile(fs.readFileSync(lock.path, "utf8"));
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw new Error(`refusing to remove ${lock.path}: it is not a Pulumi lock file (${(err as Error).message}); inspect it and remove it by hand if it is stray`);
    }
    const holder = lockHolderStatus(info);
    if (holder.state === "alive") {
        throw new Error(`refusing to remove ${lock.path}: pid ${info.pid} (pulumi) still runs on this host; wait for it to finish, or stop it first (kill ${info.pid})`);
    }
    if (holder.state === "other-host") {
        throw new Error(`refusing to remove ${lock.path}: ${holder.detail}; once sure it is gone, run \`pulumi cancel\``);
    }
    const removed: string[] = [];
    for (const file of [lock.path, `${lock.path}.attrs`]) {
        try {
            fs.unlinkSync(file);
            removed.push(file);
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`cannot remove ${file}: ${(err as Error).message}`);
        }
    }
    return removed;
}

// ---------------------------------------------------------------------------
// /proc: processes and listening sockets
// ---------------------------------------------------------------------------

/** One process as /proc shows it. argv may hold secrets: never print it. */
export interface ProcessEntry {
    pid: number;
    ppid: number;
    pgid: number;
    /** One-letter state (R, S, D, Z, T, …). */
    state: string;
    /** Start time in clock ticks since boot; with pid, identifies the process. */
    startTicks: number;
    argv: string[];
    /** basename of the executable (or argv[0] when /proc/<pid>/exe is unreadable). */
    program: string;
    /** null when unreadable (another user's process, or it just ended). */
    cwd: string | null;
}

export interface ProcStat {
    pid: number;
    comm: string;
    state: string;
    ppid: number;
    pgid: number;
    startTicks: number;
}

/** Parses /proc/<pid>/stat; comm may contain spaces and parentheses. */
export function parseProcStat(text: string): ProcStat {
    const open = text.indexOf("(");
    const close = text.lastIndexOf(")");
    if (open < 0 || close < open) throw new Error("not a /proc/<pid>/stat line");
    const rest = text.slice(close + 2).trim().split(/\s+/);
    // rest[0] is field 3 (state); starttime is field 22.
    const field = (n: number) => Number(rest[n - 3]);
    return {
        pid: Number(text.slice(0, open).trim()),
        comm: text.slice(open + 1, close),
        state: rest[0],
        ppid: field(4),
        pgid: field(5),
        startTicks: field(22),
    };
}

/** Linux reports /proc times in USER_HZ, 100 on every architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

function processStartDate(startTicks: number): Date | null {
    try {
        const btime = /^btime\s+(\d+)$/m.exec(fs.readFileSync("/proc/stat", "utf8"));
        if (!btime) return null;
        return new Date((Number(btime[1]) + startTicks / CLOCK_TICKS_PER_SECOND) * 1000);
    } catch {
        return null;
    }
}

function readLink(file: string): string | null {
    try {
        return fs.readlinkSync(file).replace(/ \(deleted\)$/, "");
    } catch {
        return null;
    }
}

/** One process from /proc, or null if it is gone (or a kernel thread). */
export function readProcess(pid: number): ProcessEntry | null {
    try {
        const stat = parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        if (argv[argv.length - 1] === "") argv.pop();
        if (argv.length === 0) return null; // kernel thread or zombie without argv
        const exe = readLink(`/proc/${pid}/exe`);
        return {
            pid,
            ppid: stat.ppid,
            pgid: stat.pgid,
            state: stat.state,
            startTicks: stat.startTicks,
            argv,
            program: path.basename(exe ?? argv[0]),
            cwd: readLink(`/proc/${pid}/cwd`),
        };
    } catch {
        return null;
    }
}

/** Every process visible in /proc (ones that end while reading are skipped). */
export function readProcessTable(): ProcessEntry[] {
    const table: ProcessEntry[] = [];
    for (const name of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(name)) continue;
        const entry = readProcess(Number(name));
        if (entry) table.push(entry);
    }
    return table;
}

/** A TCP socket from /proc/net/tcp or tcp6. */
export interface TcpSocket {
    /** Dotted IPv4, or IPv6 text (`::1`, `::ffff:127.0.0.1`). */
    address: string;
    port: number;
    /** The kernel's state code: 0A is LISTEN, 01 ESTABLISHED. */
    state: string;
}

const TCP_LISTEN = "0A";

/**
 * Parses /proc/net/tcp or /proc/net/tcp6. Addresses are hex words in the
 * host's byte order (`0100007F:ADDC` is 127.0.0.1:44508 on little-endian).
 */
export function parseProcNetTcp(text: string, endianness: "LE" | "BE" = os.endianness()): TcpSocket[] {
    const sockets: TcpSocket[] = [];
    for (const line of text.split("\n").slice(1)) {
        const fields = line.trim().split(/\s+/);
        if (fields.length < 4) continue;
        const [addrHex, portHex] = fields[1].split(":");
        if (!portHex || !/^[0-9A-Fa-f]+$/.test(addrHex)) continue;
        sockets.push({ address: decodeProcAddress(addrHex, endianness), port: parseInt(portHex, 16), state: fields[3].toUpperCase() });
    }
    return sockets;
}

function decodeProcAddress(hex: string, endianness: "LE" | "BE"): string {
    const bytes: number[] = [];
    // Each 32-bit word is in host byte order.
    for (let w = 0; w < hex.length; w += 8) {
        const word = hex.slice(w, w + 8).match(/../g)!.map((b) => parseInt(b, 16));
        bytes.push(...(endianness === "LE" ? word.reverse() : word));
    }
    if (bytes.length === 4) return bytes.join(".");
    return formatIpv6(bytes);
}

function formatIpv6(bytes: number[]): string {
    const isV4Mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    if (isV4Mapped) return `::ffff:${bytes.slice(12).join(".")}`;
    const groups = [];
    for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
    // Compress the longest run of zero groups (RFC 5952).
    let bestStart = -1;
    let bestLength = 1;
    for (let i = 0; i < 8; ) {
        if (groups[i] !== "0") {
            i++;
            continue;
        }
        let j = i;
        while (j < 8 && groups[j] === "0") j++;
        if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
        i = j;
    }
    if (bestStart < 0) return groups.join(":");
    return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLength).join(":")}`;
}

/** The listening TCP sockets of this network namespace. */
export function listeningSockets(): TcpSocket[] {
    const sockets: TcpSocket[] = [];
    for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
        try {
            sockets.push(...parseProcNetTcp(fs.readFileSync(file, "utf8")));
        } catch {
            // No IPv6 in this kernel: tcp6 is missing.
        }
    }
    return sockets.filter((s) => s.state === TCP_LISTEN);
}

/**
 * Whether something listens on `host:port` (the engine's gRPC address). A
 * socket bound to the wildcard address also answers there.
 */
export function isListening(hostPort: string, sockets: TcpSocket[]): boolean {
    const parsed = splitHostPort(hostPort);
    if (!parsed) return false;
    const { host, port } = parsed;
    const loopback = host === "localhost";
    return sockets.some(
        (s) =>
            s.state === TCP_LISTEN &&
            s.port === port &&
            (s.address === host ||
                s.address === `::ffff:${host}` ||
                s.address === "0.0.0.0" ||
                s.address === "::" ||
                (loopback && (s.address.startsWith("127.") || s.address === "::1"))),
    );
}

function splitHostPort(hostPort: string): { host: string; port: number } | null {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(hostPort);
    if (!match) return null;
    return { host: (match[1] ?? match[2]).toLowerCase(), port: Number(match[3]) };
}

// ---------------------------------------------------------------------------
// Orphaned engine processes
// ---------------------------------------------------------------------------

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

function isPulumiCli(p: Pick<ProcessEntry, "program" | "argv">): boolean {
    return p.program === "pulumi" || path.basename(p.argv[0] ?? "") === "pulumi";
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

// ---------------------------------------------------------------------------
// Ending processes
// ---------------------------------------------------------------------------

/** A pid, or a process found earlier: its start time guards against pid reuse. */
export type ProcessRef = number | { pid: number; startTicks?: number };

export interface EndedProcess {
    pid: number;
    program: string;
    /**
     * `SIGTERM`: ended within the grace period; `SIGKILL`: had to be killed;
     * `already-gone`: not running (or the pid now belongs to another process);
     * `survived`: still there after SIGKILL (e.g. in uninterruptible I/O);
     * `not-permitted`: another user's process.
     */
    outcome: "SIGTERM" | "SIGKILL" | "already-gone" | "survived" | "not-permitted";
    /** Included because it descends from a requested pid. */
    descendant: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function isRunning(pid: number, startTicks: number): boolean {
    const p = readProcess(pid);
    return p !== null && p.startTicks === startTicks && p.state !== "Z";
}

function signal(pid: number, sig: NodeJS.Signals): "ok" | "gone" | "not-permitted" {
    try {
        process.kill(pid, sig);
        return "ok";
    } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM" ? "not-permitted" : "gone";
    }
}

/**
 * Ends each process with everything it started: the trees are frozen
 * (SIGSTOP, parents first, so no shell starts its next command), sent
 * SIGTERM children first and resumed; what is still there after graceMs,
 * with anything it started meanwhile, is frozen again and SIGKILLed.
 * Signals go to single pids, not process groups, because a group may hold
 * processes outside the tree. A pid whose start time changed since it was
 * found is left alone.
 */
export async function endProcesses(refs: ProcessRef[], graceMs = 5000): Promise<EndedProcess[]> {
    const results = new Map<number, EndedProcess>();
    const targets = new Map<number, ProcessEntry>(); // insertion order: parents before children
    const requested = new Set<number>();

    for (const ref of refs) {
        const pid = typeof ref === "number" ? ref : ref.pid;
        const expectedStart = typeof ref === "number" ? undefined : ref.startTicks;
        requested.add(pid);
        const p = readProcess(pid);
        if (!p || p.state === "Z" || (expectedStart !== undefined && p.startTicks !== expectedStart)) {
            results.set(pid, { pid, program: p?.program ?? "?", outcome: "already-gone", descendant: false });
            continue;
        }
        targets.set(pid, p);
    }

    // Freeze, then collect children until the tree stops growing.
    const frozen = new Set<number>();
    for (let round = 0; round < 10; round++) {
        let grew = false;
        for (const [pid, p] of targets) {
            if (frozen.has(pid)) continue;
            const sent = signal(pid, "SIGSTOP");
            frozen.add(pid);
            if (sent === "not-permitted") results.set(pid, { pid, program: p.program, outcome: "not-permitted", descendant: !requested.has(pid) });
        }
        for (const p of readProcessTable()) {
            // A nested pulumi CLI is another run: leave its tree alone.
            if (!targets.has(p.pid) && targets.has(p.ppid) && p.state !== "Z" && p.pid !== process.pid && !isPulumiCli(p)) {
                targets.set(p.pid, p);
                grew = true;
            }
        }
        if (!grew) break;
    }

    const live = [...targets.values()].filter((p) => !results.has(p.pid));
    const childrenFirst = [...live].reverse();
    for (const p of childrenFirst) signal(p.pid, "SIGTERM");
    for (const p of childrenFirst) signal(p.pid, "SIGCONT");

    const deadline = Date.now() + graceMs;
    let remaining = live.filter((p) => isRunning(p.pid, p.startTicks));
    while (remaining.length > 0 && Date.now() < deadline) {
        await sleep(Math.min(100, Math.max(1, deadline - Date.now())));
        remaining = remaining.filter((p) => isRunning(p.pid, p.startTicks));
    }
    for (const p of live) {
        if (!remaining.includes(p)) results.set(p.pid, { pid: p.pid, program: p.program, outcome: "SIGTERM", descendant: !requested.has(p.pid) });
    }

    // A survivor that ignores SIGTERM may have started its next command
    // meanwhile: freeze the survivors and take in their new children too.
    for (const p of remaining) signal(p.pid, "SIGSTOP");
    for (let round = 0, grew = true; grew && round < 10; round++) {
        grew = false;
        const inTree = new Set(remaining.map((p) => p.pid));
        for (const p of readProcessTable()) {
            if (!inTree.has(p.pid) && inTree.has(p.ppid) && p.state !== "Z" && p.pid !== process.pid && !isPulumiCli(p)) {
                signal(p.pid, "SIGSTOP");
                remaining.push(p);
                grew = true;
            }
        }
    }
    for (const p of [...remaining].reverse()) signal(p.pid, "SIGKILL");
    const killDeadline = Date.now() + 2000;
    let survivors = remaining.filter((p) => isRunning(p.pid, p.startTicks));
    while (survivors.length > 0 && Date.now() < killDeadline) {
        await sleep(50);
        survivors = survivors.filter((p) => isRunning(p.pid, p.startTicks));
    }
    for (const p of remaining) {
        results.set(p.pid, { pid: p.pid, program: p.program, outcome: survivors.includes(p) ? "survived" : "SIGKILL", descendant: !requested.has(p.pid) });
    }
    return [...results.values()].sort((a, b) => a.pid - b.pid);
}

// ---------------------------------------------------------------------------
// Pending operations in an exported deployment
// ---------------------------------------------------------------------------

/** `pulumi stack export` output: `{ version: 3, deployment: { …, pending_operations? } }`. */
export interface ExportedDeployment {
    version: number;
    deployment: { pending_operations?: unknown[] | null; [key: string]: unknown };
    [key: string]: unknown;
}

export interface PendingOperation {
    /** creating, updating, deleting, reading (the engine's operation types). */
    type: string;
    urn: string;
    resourceType: string;
}

/** Versions whose deployment has the v3 shape (4 adds `features`). */
const DEPLOYMENT_VERSIONS = [3, 4];

function checkedDeployment(exported: unknown): ExportedDeployment {
    const e = exported as ExportedDeployment | null;
    if (e === null || typeof e !== "object" || typeof e.deployment !== "object" || e.deployment === null) {
        throw new Error("not a `pulumi stack export` object: it has no `deployment`");
    }
    if (!DEPLOYMENT_VERSIONS.includes(e.version)) {
        throw new Error(`deployment version ${String(e.version)} is not supported (expected 3 or 4); export it with a current pulumi CLI`);
    }
    return e;
}

/** The operations the interrupted run left in flight, one per resource. */
export function pendingOperations(exported: unknown): PendingOperation[] {
    const ops = checkedDeployment(exported).deployment.pending_operations ?? [];
    return ops.map((op, i) => {
        const o = op as { type?: unknown; resource?: { urn?: unknown; type?: unknown } };
        if (typeof o?.type !== "string" || typeof o.resource?.urn !== "string") {
            throw new Error(`pending_operations[${i}] has no type or resource URN; the export is damaged`);
        }
        return { type: o.type, urn: o.resource.urn, resourceType: typeof o.resource.type === "string" ? o.resource.type : "" };
    });
}

/**
 * A copy of the export without pending operations (all, or only those of
 * the given types), ready for `pulumi stack import`. The input is not changed.
 */
export function withoutPendingOperations<T>(exported: T, types?: string[]): T {
    const e = checkedDeployment(exported);
    const { pending_operations: ops, ...rest } = e.deployment;
    const kept = types ? (ops ?? []).filter((op) => !types.includes((op as { type?: string }).type ?? "")) : [];
    // The CLI omits an empty list (`omitempty`), so leave the key out.
    const deployment = kept.length > 0 ? { ...rest, pending_operations: kept } : rest;
    return { ...e, deployment } as T;
}
