/**
 * The stack's lock in a file:// backend: where the CLI keeps it, whether the
 * run that wrote it still runs, and removing a stale one.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isPulumiCli, processStartDate, readProcess } from "./processTable";

// What the engine (CLI v3.248.0) leaves, observed here:
// `<backend>/.pulumi/locks/organization/<project>/<stack>/<uuid>.json`
// (`.pulumi/locks/<stack>/` for a backend without project layout), holding
// `{"pid","username","hostname","timestamp"}`, plus a `.json.attrs` sidecar
// written by the blob library.

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
