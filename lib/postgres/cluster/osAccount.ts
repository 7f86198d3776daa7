/**
 * The OS account that owns a cluster's files and runs its processes: this
 * process's own, or (as root, since initdb refuses root) the `postgres` user.
 */
import { spawnSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import { runOrThrow, type RunResult } from "../../process/processes";

export function isRoot(): boolean {
    return typeof process.geteuid === "function" && process.geteuid() === 0;
}

/** The OS account that owns the cluster's files and runs its processes. */
export interface ServerAccount {
    name: string;
    uid: number;
    gid: number;
    /** Prefix that runs a command as this account (empty: as ourselves). */
    commandPrefix: string[];
}

function lookupId(flag: "-u" | "-g", user: string): number {
    const result = spawnSync("id", [flag, user], { encoding: "utf8" });
    if (result.status !== 0) {
        throw new Error(
            `OS user '${user}' not found: initdb refuses to run as root, so the cluster runs as '${user}'. ` +
                "Install Debian's 'postgresql' package (it creates the user) or pass serverOsUser.",
        );
    }
    return Number(result.stdout.trim());
}

/** This process's own account, or `serverOsUser` (run through runuser or setpriv) when this process is root. */
export function resolveServerAccount(serverOsUser: string): ServerAccount {
    if (!isRoot()) {
        return { name: os.userInfo().username, uid: process.getuid!(), gid: process.getgid!(), commandPrefix: [] };
    }
    const uid = lookupId("-u", serverOsUser);
    const gid = lookupId("-g", serverOsUser);
    const hasRunuser = spawnSync("runuser", ["--version"]).status === 0;
    const commandPrefix = hasRunuser
        ? ["runuser", "-u", serverOsUser, "--"]
        : ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--"];
    return { name: serverOsUser, uid, gid, commandPrefix };
}

/** Environment for server-side tools: no PG* variables from the caller to surprise them. */
export function serverToolEnv(): NodeJS.ProcessEnv {
    return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("PG")));
}

/** Runs `command` as the account in `cwd`; rejects with its exit status and output tail when it fails. */
export function runAsServer(account: ServerAccount, command: string, args: readonly string[], cwd: string): Promise<RunResult> {
    const [program, ...prefixArgs] = [...account.commandPrefix, command];
    return runOrThrow(program, [...prefixArgs, ...args], { env: serverToolEnv(), cwd });
}

/** Runs `command` as the account, in `/`, output discarded, for at most 30 s; returns its exit status. */
export function runAsServerSync(account: ServerAccount, command: string, args: readonly string[]): number | null {
    const [program, ...prefixArgs] = [...account.commandPrefix, command];
    return spawnSync(program, [...prefixArgs, ...args], { env: serverToolEnv(), cwd: "/", stdio: "ignore", timeout: 30_000 }).status;
}

/** True when the server's OS user can reach `dir` (search permission on it and every parent). */
export function serverCanReach(dir: string, serverOsUser = "postgres"): boolean {
    // Not root: the server runs as this process's own user.
    if (!isRoot()) return true;
    return runAsServerSync(resolveServerAccount(serverOsUser), "test", ["-x", dir]) === 0;
}

/** Makes `dir` private (0700) to the account. */
export async function handOver(dir: string, account: ServerAccount): Promise<void> {
    await fsp.chmod(dir, 0o700);
    if (isRoot()) await fsp.chown(dir, account.uid, account.gid);
}

export async function assertServerCanWrite(dir: string, account: ServerAccount): Promise<void> {
    try {
        await runAsServer(account, "test", ["-w", dir, "-a", "-x", dir], "/");
    } catch {
        throw new Error(
            `OS user '${account.name}' cannot reach ${dir}; choose a stateDir whose parent directories it can traverse (e.g. under ${os.tmpdir()})`,
        );
    }
}
