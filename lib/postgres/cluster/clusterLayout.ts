/**
 * Where a cluster lives: its directory (or a private stand-in its OS user can
 * reach), and the data directory, socket directory and log laid out under it.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { assertServerCanWrite, handOver, resolveServerAccount, serverCanReach, type ServerAccount } from "./osAccount";
import { ensurePostgresBinDir, type ServerBinaryOptions } from "./serverBinaries";
import type { LiveCluster } from "./watchdog";

// sockaddr_un.sun_path is 108 bytes; leave room for "/.s.PGSQL.65535".
const MAX_SOCKET_DIR_LENGTH = 90;

/** Where a cluster lives, as decided by {@link clusterLocation}. */
export interface ClusterLocation {
    /** The directory to use (what `stateDir` gets). */
    dir: string;
    /** The directory asked for. */
    preferred: string;
    /** True when `dir` is the private stand-in for an unreachable `preferred`. */
    relocated: boolean;
}

/**
 * The private stand-in for a cluster directory the server's OS user cannot
 * reach: `<root>/<prefix><digest of the preferred path>`, so two checkouts (or
 * two stacks) never share one, and the same checkout always finds its own.
 */
export function relocatedClusterDir(preferred: string, prefix = "protea-pg-", root = fs.existsSync("/var/tmp") ? "/var/tmp" : "/tmp"): string {
    const digest = crypto.createHash("sha256").update(path.resolve(preferred)).digest("hex").slice(0, 16);
    return path.join(root, `${prefix}${digest}`);
}

/**
 * Decides where a cluster asked for at `preferred` lives. Not `relocatable`:
 * there, as given (startPostgresCluster then fails clearly when the server's
 * OS user cannot use it). `relocatable`: there when the server's OS user can
 * reach its parent (created if missing), otherwise in
 * {@link relocatedClusterDir}, which must be a real directory owned by root
 * or that user when it already exists.
 */
export function clusterLocation(
    preferred: string,
    options: { relocatable: boolean; serverOsUser?: string; prefix?: string; root?: string },
): ClusterLocation {
    const wanted = path.resolve(preferred);
    if (!options.relocatable) return { dir: wanted, preferred: wanted, relocated: false };
    fs.mkdirSync(path.dirname(wanted), { recursive: true });
    if (serverCanReach(path.dirname(wanted), options.serverOsUser)) return { dir: wanted, preferred: wanted, relocated: false };
    const dir = relocatedClusterDir(wanted, options.prefix, options.root);
    let stat: fs.Stats | undefined;
    try {
        stat = fs.lstatSync(dir);
    } catch {
        // Absent: startPostgresCluster creates it, 0700, owned by the server's OS user.
    }
    if (stat) {
        const account = resolveServerAccount(options.serverOsUser ?? "postgres");
        if (!stat.isDirectory() || stat.isSymbolicLink() || (stat.uid !== 0 && stat.uid !== account.uid && stat.uid !== process.getuid?.())) {
            throw new Error(`${dir} (the cluster's place, since OS user '${account.name}' cannot reach ${wanted}) exists and is not a directory owned by root or '${account.name}'; remove it or set a stateDir`);
        }
    }
    return { dir, preferred: wanted, relocated: true };
}

/** Where a cluster lives: its data directory, log and socket under `stateDir` (the socket in /tmp when that path is too long for one). */
export interface ClusterLayout {
    account: ServerAccount;
    binDir: string;
    rootDir: string;
    dataDir: string;
    logFile: string;
    socketDir: string;
    /** True when the socket directory is `<rootDir>/socket`, still to be made; false when that path is too long and a temporary one (made already) stands in. */
    ownSocketDir: boolean;
    live: LiveCluster;
}

async function prepareRootDir(stateDir: string | undefined): Promise<string> {
    if (!stateDir) return fsp.mkdtemp(path.join(os.tmpdir(), "protea-pg-"));
    const rootDir = path.resolve(stateDir);
    await fsp.mkdir(rootDir, { recursive: true });
    if ((await fsp.readdir(rootDir)).length > 0) {
        throw new Error(`stateDir ${rootDir} is not empty; the cluster needs a fresh directory (stop() removes it)`);
    }
    return rootDir;
}

/** Lays a new cluster out under `stateDir` (absent or empty; a new temporary directory when not given). */
export async function clusterLayout(options: ServerBinaryOptions & { stateDir?: string; serverOsUser?: string }): Promise<ClusterLayout> {
    const binDir = await ensurePostgresBinDir(options);
    const account = resolveServerAccount(options.serverOsUser ?? "postgres");
    const rootDir = await prepareRootDir(options.stateDir);
    const longSocketPath = path.join(rootDir, "socket").length > MAX_SOCKET_DIR_LENGTH;
    const socketDir = longSocketPath ? await fsp.mkdtemp(path.join(os.tmpdir(), "pgsock-")) : path.join(rootDir, "socket");
    const dataDir = path.join(rootDir, "data");
    const live: LiveCluster = { account, pgCtl: path.join(binDir, "pg_ctl"), dataDir, removableDirs: longSocketPath ? [rootDir, socketDir] : [rootDir] };
    return { account, binDir, rootDir, dataDir, logFile: path.join(rootDir, "postgres.log"), socketDir, live, ownSocketDir: !longSocketPath };
}

/** Makes the layout's folders and hands them to the server's OS user, checking it can write there. */
export async function prepareClusterFolders(layout: ClusterLayout): Promise<void> {
    if (layout.ownSocketDir) await fsp.mkdir(layout.socketDir);
    await handOver(layout.rootDir, layout.account);
    await handOver(layout.socketDir, layout.account);
    await assertServerCanWrite(layout.rootDir, layout.account);
}
