/**
 * A throwaway PostgreSQL cluster for tests and the local drill.
 *
 * `startPostgresCluster()` runs Debian's `initdb` and `pg_ctl` on a free
 * 127.0.0.1 port, with the data directory, unix socket directory and server
 * log under one directory that `stop()` removes again. Authentication:
 * the bootstrap superuser may use the private unix socket without a password
 * (the socket directory is 0700); every other connection, and all of TCP,
 * needs SCRAM-SHA-256. The application role's password is random and never
 * leaves this process in clear text: the server only ever sees its SCRAM
 * verifier, and nothing puts it in a process's arguments.
 *
 * Safety nets, so a failing or killed test leaves nothing behind: every live
 * cluster is stopped on process exit and on SIGINT/SIGTERM/SIGHUP, and a tiny
 * detached watchdog stops it and removes its directory if this process dies
 * without running either (SIGKILL, a crashed test worker).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client, type ClientConfig } from "pg";

/** Options for {@link startPostgresCluster}. */
export interface PostgresClusterOptions {
    /**
     * Directory that holds the data directory, the socket directory and the
     * server log. It must be absent or empty; `stop()` removes it. Defaults to a
     * new directory under `os.tmpdir()`.
     */
    stateDir?: string;
    /** Application role (LOGIN, owner of `database`). Defaults to "protea". */
    user?: string;
    /** Application database. Defaults to "protea". */
    database?: string;
    /** Application role's password (printable ASCII). Defaults to 32 random characters. */
    password?: string;
    /**
     * Run without durability (fsync, full_page_writes and synchronous_commit
     * off, wal_level=minimal, max_wal_senders=0, roomy maintenance_work_mem and
     * max_wal_size): much faster restores, but a crash can corrupt the cluster.
     * Only for throwaway clones. Defaults to false.
     */
    durabilityOff?: boolean;
    /** Extra postgresql.conf settings, applied last. Defaults to none. */
    settings?: Record<string, string | number | boolean>;
    /** Directory with initdb, pg_ctl and postgres. Defaults to the search in {@link findPostgresBinDir}. */
    binDir?: string;
    /** When the binaries are missing and this process is root, apt-get install Debian's `postgresql`. Defaults to true. */
    installIfMissing?: boolean;
    /** OS user that runs initdb/pg_ctl/postgres when this process is root. Defaults to "postgres" (created by Debian's package). */
    serverOsUser?: string;
    /** Receives one line per step (never a secret). Defaults to discarding them. */
    log?: (line: string) => void;
    /** Listen on this port instead of a free one; fails when it is taken. Defaults to a free port. */
    port?: number;
    /**
     * Leave the server running when this process exits: no exit handlers, no
     * watchdog. For the drill, whose cluster outlives the command that starts
     * it; stop it with {@link stopClusterInDir}. Needs `stateDir`. Defaults to false.
     */
    detached?: boolean;
}

/** A running cluster, as returned by {@link startPostgresCluster}. */
export interface PostgresCluster {
    readonly host: string;
    readonly port: number;
    /** Application role. */
    readonly user: string;
    readonly password: string;
    readonly database: string;
    /** libpq URL with the password: pass it through the environment, never argv or logs. */
    readonly libpqUrl: string;
    /** The same as a SQLAlchemy URL (`postgresql+psycopg://…`), e.g. for PROTEA_DB_URL. */
    readonly sqlalchemyUrl: string;
    /** libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) for psql, pg_dump, pg_restore. */
    readonly libpqEnv: Readonly<Record<string, string>>;
    /** node-postgres config for the application role over TCP. */
    readonly clientConfig: Readonly<ClientConfig>;
    /** Bootstrap superuser; reachable only over the unix socket (see `superuserClientConfig`). */
    readonly superuser: string;
    /** node-postgres config for the bootstrap superuser over the unix socket. */
    readonly superuserClientConfig: Readonly<ClientConfig>;
    /** The directory `stop()` removes. */
    readonly rootDir: string;
    readonly dataDir: string;
    readonly socketDir: string;
    readonly logFile: string;
    readonly binDir: string;
    readonly postmasterPid: number;
    /** Stops the server and removes its directories; safe to call more than once. */
    stop(): Promise<void>;
}

/** Thrown when PostgreSQL server binaries are missing and cannot be installed here. */
export class PostgresNotInstalledError extends Error {
    constructor(reason: string) {
        super(
            `PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: ${reason}. ` +
                "Install Debian's 'postgresql' package (apt-get install postgresql), " +
                "or run 'bash scripts/setup-fixture.sh' as root.",
        );
        this.name = "PostgresNotInstalledError";
    }
}

const SERVER_BINARIES = ["initdb", "pg_ctl", "postgres"] as const;
const BOOTSTRAP_SUPERUSER = "postgres";
const LOOPBACK = "127.0.0.1";
// sockaddr_un.sun_path is 108 bytes; leave room for "/.s.PGSQL.65535".
const MAX_SOCKET_DIR_LENGTH = 90;
const START_ATTEMPTS = 4;

const DURABILITY_OFF_SETTINGS: Record<string, string> = {
    fsync: "off",
    full_page_writes: "off",
    synchronous_commit: "off",
    wal_level: "minimal",
    max_wal_senders: "0",
    // Restores build indexes and write WAL in bulk: fewer sorts spilling to disk, fewer checkpoints.
    // The drill's pg_restore sessions ask for more (up to 1GB, sized from the machine's memory) through
    // PGOPTIONS (lib/drill/drillRestore.ts); this is the floor for every other session of the clone.
    maintenance_work_mem: "'512MB'",
    max_wal_size: "'8GB'",
    checkpoint_timeout: "'30min'",
};

// ---------------------------------------------------------------------------
// Locating (or installing) the server binaries
// ---------------------------------------------------------------------------

function hasServerBinaries(dir: string): boolean {
    return SERVER_BINARIES.every((name) => {
        try {
            fs.accessSync(path.join(dir, name), fs.constants.X_OK);
            return true;
        } catch {
            return false;
        }
    });
}

function compareVersionsDescending(a: string, b: string): number {
    return b.localeCompare(a, "en", { numeric: true });
}

/**
 * Finds a directory holding initdb, pg_ctl and postgres: PATH first, then
 * Debian's /usr/lib/postgresql/<version>/bin (newest first), then
 * `pg_config --bindir`. Returns undefined when none has all three.
 */
export function findPostgresBinDir(): string | undefined {
    const onPath = (process.env.PATH ?? "")
        .split(path.delimiter)
        .filter((dir) => dir && fs.existsSync(path.join(dir, "initdb")))
        .map((dir) => path.dirname(fs.realpathSync(path.join(dir, "initdb"))));
    const debianRoot = "/usr/lib/postgresql";
    const debianVersions = fs.existsSync(debianRoot)
        ? fs.readdirSync(debianRoot).sort(compareVersionsDescending).map((version) => path.join(debianRoot, version, "bin"))
        : [];
    const found = [...onPath, ...debianVersions].find(hasServerBinaries);
    if (found) return found;
    // Last resort (a non-Debian layout): ask pg_config, which may be absent.
    const pgConfig = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
    const bindir = pgConfig.status === 0 ? pgConfig.stdout.trim() : "";
    return bindir && hasServerBinaries(bindir) ? bindir : undefined;
}

function isRoot(): boolean {
    return typeof process.geteuid === "function" && process.geteuid() === 0;
}

/**
 * Returns the server binary directory, installing Debian's `postgresql`
 * with apt-get first when it is missing and this process is root.
 */
export async function ensurePostgresBinDir(
    options: Pick<PostgresClusterOptions, "binDir" | "installIfMissing" | "log"> = {},
): Promise<string> {
    const log = options.log ?? (() => undefined);
    if (options.binDir) {
        if (!hasServerBinaries(options.binDir)) {
            throw new PostgresNotInstalledError(`binDir ${options.binDir} lacks one of ${SERVER_BINARIES.join(", ")}`);
        }
        return options.binDir;
    }
    const found = findPostgresBinDir();
    if (found) return found;
    if (!isRoot()) throw new PostgresNotInstalledError("not on PATH, in /usr/lib/postgresql/*/bin or at pg_config --bindir, and not root to install them");
    if (options.installIfMissing === false) throw new PostgresNotInstalledError("installIfMissing is false");

    const aptEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    log("postgres: server binaries missing; apt-get update");
    await runCommand("apt-get", ["update", "-qq"], { env: aptEnv });
    log("postgres: apt-get install postgresql");
    await runCommand("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "postgresql"], { env: aptEnv });
    const installed = findPostgresBinDir();
    if (!installed) throw new PostgresNotInstalledError("apt-get installed 'postgresql' but the binaries are still missing");
    return installed;
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

interface CommandResult {
    stdout: string;
    stderr: string;
}

interface RunOptions {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
}

function lastLines(text: string, count: number): string {
    return text.trimEnd().split("\n").slice(-count).join("\n");
}

/** Runs a command without a shell; rejects with its exit status and stderr tail. */
function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        child.on("error", reject);
        child.on("close", (code, signal) => {
            if (code === 0) return resolve({ stdout, stderr });
            const status = signal ? `signal ${signal}` : `exit code ${code}`;
            reject(new Error(`${path.basename(command)} ${args[0] ?? ""} failed (${status}):\n${lastLines(stderr || stdout, 20)}`));
        });
    });
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

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (condition()) return true;
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return condition();
}

/** The OS account that owns the cluster's files and runs its processes. */
interface ServerAccount {
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

function resolveServerAccount(serverOsUser: string): ServerAccount {
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
function serverToolEnv(): NodeJS.ProcessEnv {
    return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("PG")));
}

function runAsServer(account: ServerAccount, command: string, args: readonly string[], cwd: string): Promise<CommandResult> {
    const [program, ...prefixArgs] = [...account.commandPrefix, command];
    return runCommand(program, [...prefixArgs, ...args], { env: serverToolEnv(), cwd });
}

function runAsServerSync(account: ServerAccount, command: string, args: readonly string[]): void {
    const [program, ...prefixArgs] = [...account.commandPrefix, command];
    spawnSync(program, [...prefixArgs, ...args], { env: serverToolEnv(), cwd: "/", stdio: "ignore", timeout: 30_000 });
}

// ---------------------------------------------------------------------------
// Small pure helpers
// ---------------------------------------------------------------------------

/** Finds a TCP port on 127.0.0.1 that nobody listens on right now. */
export function findFreePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.unref();
        server.on("error", reject);
        server.listen(0, LOOPBACK, () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677),
 * so CREATE ROLE never carries the clear-text password to the server, its
 * logs or pg_stat_activity.
 */
export function scramSha256Verifier(password: string, iterations = 4096): string {
    if (!/^[\x21-\x7e]+$/.test(password)) {
        // SASLprep is the identity on printable ASCII; anything else would need a full implementation.
        throw new Error("password must be non-empty printable ASCII without spaces");
    }
    const salt = crypto.randomBytes(16);
    const saltedPassword = crypto.pbkdf2Sync(password, salt, iterations, 32, "sha256");
    const hmac = (key: Buffer, text: string) => crypto.createHmac("sha256", key).update(text).digest();
    const storedKey = crypto.createHash("sha256").update(hmac(saltedPassword, "Client Key")).digest();
    const serverKey = hmac(saltedPassword, "Server Key");
    return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

function generatePassword(): string {
    return crypto.randomBytes(24).toString("base64url");
}

function formatSetting(value: string | number | boolean): string {
    if (typeof value === "boolean") return value ? "on" : "off";
    if (typeof value === "number") return String(value);
    // Already quoted (as in DURABILITY_OFF_SETTINGS) or a bare word/number.
    if (/^'.*'$/.test(value) || /^[A-Za-z0-9_.]+$/.test(value)) return value;
    return `'${value.replace(/'/g, "''")}'`;
}

/** postgresql.conf lines for this cluster; later keys win. */
export function clusterSettings(
    port: number,
    socketDir: string,
    durabilityOff: boolean,
    extra: Record<string, string | number | boolean> = {},
): string {
    const settings: Record<string, string | number | boolean> = {
        listen_addresses: `'${LOOPBACK}'`,
        port,
        unix_socket_directories: socketDir,
        unix_socket_permissions: "0700",
        password_encryption: "'scram-sha-256'",
        ...(durabilityOff ? DURABILITY_OFF_SETTINGS : {}),
        ...extra,
    };
    const lines = Object.entries(settings).map(([key, value]) => `${key} = ${formatSetting(value)}`);
    return `# Written by lib/postgres/postgresCluster.ts on every start attempt.\n${lines.join("\n")}\n`;
}

/** pg_hba.conf: socket trust for the bootstrap superuser only; SCRAM everywhere else. */
export function clusterHbaRules(superuser: string): string {
    return [
        "# Written by lib/postgres/postgresCluster.ts. The socket directory is 0700, so only",
        "# the server's OS user (and root) can use the passwordless superuser line.",
        `local   all   ${superuser}                 trust`,
        "local   all   all                      scram-sha-256",
        `host    all   all      ${LOOPBACK}/32    scram-sha-256`,
        "",
    ].join("\n");
}

function buildUrls(user: string, password: string, port: number, database: string) {
    const credentials = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
    const address = `${LOOPBACK}:${port}/${encodeURIComponent(database)}`;
    return {
        libpqUrl: `postgresql://${credentials}@${address}`,
        sqlalchemyUrl: `postgresql+psycopg://${credentials}@${address}`,
    };
}

// ---------------------------------------------------------------------------
// Safety nets: process exit, signals, and a watchdog that outlives a SIGKILL
// ---------------------------------------------------------------------------

interface LiveCluster {
    account: ServerAccount;
    pgCtl: string;
    dataDir: string;
    removableDirs: string[];
    watchdog?: ChildProcess;
}

const liveClusters = new Set<LiveCluster>();
const EXIT_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

function stopLiveClusterSync(live: LiveCluster): void {
    stopWatchdog(live);
    runAsServerSync(live.account, live.pgCtl, ["stop", "-D", live.dataDir, "-m", "immediate", "-w", "-t", "20"]);
    const pid = readPostmasterPid(live.dataDir);
    if (pid !== undefined && isProcessAlive(pid)) process.kill(pid, "SIGKILL");
    for (const dir of live.removableDirs) fs.rmSync(dir, { recursive: true, force: true });
    liveClusters.delete(live);
}

function stopAllLiveClustersSync(): void {
    for (const live of [...liveClusters]) {
        try {
            stopLiveClusterSync(live);
        } catch {
            // Best effort while the process is going away; the watchdog covers the rest.
        }
    }
}

function onExitSignal(signal: NodeJS.Signals): void {
    stopAllLiveClustersSync();
    uninstallSafetyNet();
    // Re-raise only if nobody else handles it, so the default (terminate) still happens.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

let safetyNetInstalled = false;

function installSafetyNet(): void {
    if (safetyNetInstalled) return;
    safetyNetInstalled = true;
    process.on("exit", stopAllLiveClustersSync);
    for (const signal of EXIT_SIGNALS) process.on(signal, onExitSignal);
}

function uninstallSafetyNet(): void {
    if (!safetyNetInstalled) return;
    safetyNetInstalled = false;
    process.off("exit", stopAllLiveClustersSync);
    for (const signal of EXIT_SIGNALS) process.off(signal, onExitSignal);
}

// Polls /proc (kill -0 would see a zombie parent as alive), then stops the
// cluster and removes its directories. Everything arrives as arguments:
// parent pid, data dir, N, the N words of the pg_ctl command, directories.
const WATCHDOG_SCRIPT = `
parent=$1; data=$2; ncmd=$3; shift 3
stop_command=("\${@:1:ncmd}"); dirs=("\${@:ncmd+1}")
alive() { [[ -r /proc/$1/stat ]] && ! sed 's/^.*) //' "/proc/$1/stat" | grep -q '^[ZX]'; }
while alive "$parent"; do sleep 1; done
"\${stop_command[@]}" stop -D "$data" -m immediate -w -t 20 >/dev/null 2>&1
pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) && [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null
rm -rf -- "\${dirs[@]}"
`;

function startWatchdog(live: LiveCluster): ChildProcess {
    const stopCommand = [...live.account.commandPrefix, live.pgCtl];
    const args = [String(process.pid), live.dataDir, String(stopCommand.length), ...stopCommand, ...live.removableDirs];
    const child = spawn("bash", ["-c", WATCHDOG_SCRIPT, "pg-cluster-watchdog", ...args], {
        detached: true,
        stdio: "ignore",
        cwd: "/",
        env: serverToolEnv(),
    });
    child.unref();
    return child;
}

function stopWatchdog(live: LiveCluster): void {
    const pid = live.watchdog?.pid;
    live.watchdog = undefined;
    if (pid === undefined) return;
    try {
        // Its own process group (detached): take its `sleep` along.
        process.kill(-pid, "SIGKILL");
    } catch {
        // Already gone.
    }
}

/** The postmaster's pid from `<dataDir>/postmaster.pid`, if the file is there. */
export function readPostmasterPid(dataDir: string): number | undefined {
    try {
        const pid = Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
        return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
        return undefined;
    }
}

// ---------------------------------------------------------------------------
// Starting and stopping
// ---------------------------------------------------------------------------

async function prepareRootDir(stateDir: string | undefined): Promise<string> {
    if (!stateDir) return fsp.mkdtemp(path.join(os.tmpdir(), "protea-pg-"));
    const rootDir = path.resolve(stateDir);
    await fsp.mkdir(rootDir, { recursive: true });
    if ((await fsp.readdir(rootDir)).length > 0) {
        throw new Error(`stateDir ${rootDir} is not empty; the cluster needs a fresh directory (stop() removes it)`);
    }
    return rootDir;
}

async function handOver(dir: string, account: ServerAccount): Promise<void> {
    await fsp.chmod(dir, 0o700);
    if (isRoot()) await fsp.chown(dir, account.uid, account.gid);
}

async function assertServerCanWrite(dir: string, account: ServerAccount): Promise<void> {
    try {
        await runAsServer(account, "test", ["-w", dir, "-a", "-x", dir], "/");
    } catch {
        throw new Error(
            `OS user '${account.name}' cannot reach ${dir}; choose a stateDir whose parent directories it can traverse (e.g. under ${os.tmpdir()})`,
        );
    }
}

function serverLogTail(logFile: string): string {
    try {
        return lastLines(fs.readFileSync(logFile, "utf8"), 20);
    } catch {
        return "(no server log)";
    }
}

/** Where a cluster lives: its data directory, log and socket under `stateDir` (the socket in /tmp when that path is too long for one). */
interface ClusterLayout {
    account: ServerAccount;
    binDir: string;
    rootDir: string;
    dataDir: string;
    logFile: string;
    socketDir: string;
    live: LiveCluster;
}

async function clusterLayout(options: Pick<PostgresClusterOptions, "stateDir" | "serverOsUser" | "binDir">): Promise<ClusterLayout & { ownSocketDir: boolean }> {
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
async function prepareClusterFolders(layout: ClusterLayout & { ownSocketDir: boolean }): Promise<void> {
    if (layout.ownSocketDir) await fsp.mkdir(layout.socketDir);
    await handOver(layout.rootDir, layout.account);
    await handOver(layout.socketDir, layout.account);
    await assertServerCanWrite(layout.rootDir, layout.account);
}

/** Starts a throwaway cluster; see the module comment. Cleans up after itself if any step fails. */
export async function startPostgresCluster(options: PostgresClusterOptions = {}): Promise<PostgresCluster> {
    const log = options.log ?? (() => undefined);
    const user = options.user ?? "protea";
    const database = options.database ?? "protea";
    const password = options.password ?? generatePassword();
    if (user === BOOTSTRAP_SUPERUSER) throw new Error(`user must differ from the bootstrap superuser '${BOOTSTRAP_SUPERUSER}'`);
    const verifier = scramSha256Verifier(password);

    const layout = await clusterLayout(options);
    const { account, binDir, rootDir, dataDir, logFile, socketDir, live } = layout;
    if (options.detached && !options.stateDir) throw new Error("a detached cluster needs a stateDir to be found and stopped again");
    if (!options.detached) {
        liveClusters.add(live);
        installSafetyNet();
    }

    let postmasterPid: number | undefined;
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => (stopping ??= stopCluster(live, postmasterPid, log));

    try {
        await prepareClusterFolders(layout);

        log(`postgres: initdb in ${dataDir} (as OS user ${account.name})`);
        const initdbArgs = ["-D", dataDir, "-U", BOOTSTRAP_SUPERUSER, "--auth-local=trust", "--auth-host=scram-sha-256"];
        initdbArgs.push("--encoding=UTF8", "--no-locale", "--no-instructions");
        if (options.durabilityOff) initdbArgs.push("--no-sync");
        await runAsServer(account, path.join(binDir, "initdb"), initdbArgs, rootDir);
        await fsp.writeFile(path.join(dataDir, "pg_hba.conf"), clusterHbaRules(BOOTSTRAP_SUPERUSER));
        await fsp.appendFile(path.join(dataDir, "postgresql.conf"), "\ninclude 'protea_cluster.conf'\n");
        // Watch from here on: a data directory exists that a killed test would otherwise leak.
        if (!options.detached) live.watchdog = startWatchdog(live);

        const port = await startOnFreePort(live, socketDir, logFile, options, log);
        postmasterPid = readPostmasterPid(dataDir);
        if (postmasterPid === undefined) throw new Error(`server started but ${dataDir}/postmaster.pid is unreadable`);

        const superuserClientConfig: ClientConfig = { host: socketDir, port, user: BOOTSTRAP_SUPERUSER, database: "postgres" };
        await createApplicationRole(superuserClientConfig, user, verifier, database);
        const clientConfig: ClientConfig = { host: LOOPBACK, port, user, password, database };
        await assertPasswordLoginWorks(clientConfig);
        log(`postgres: ready on ${LOOPBACK}:${port} (database ${database}, role ${user}, scram-sha-256)`);

        return {
            host: LOOPBACK,
            port,
            user,
            password,
            database,
            ...buildUrls(user, password, port, database),
            libpqEnv: { PGHOST: LOOPBACK, PGPORT: String(port), PGUSER: user, PGPASSWORD: password, PGDATABASE: database },
            clientConfig,
            superuser: BOOTSTRAP_SUPERUSER,
            superuserClientConfig,
            rootDir,
            dataDir,
            socketDir,
            logFile,
            binDir,
            postmasterPid,
            stop,
        };
    } catch (error) {
        await stop().catch(() => undefined);
        throw error;
    }
}

async function startOnFreePort(
    live: LiveCluster,
    socketDir: string,
    logFile: string,
    options: PostgresClusterOptions,
    log: (line: string) => void,
): Promise<number> {
    const confFile = path.join(live.dataDir, "protea_cluster.conf");
    for (let attempt = 1; ; attempt++) {
        // Another process may take the port between the probe and the bind; then try another.
        const port = options.port ?? (await findFreePort());
        await fsp.writeFile(confFile, clusterSettings(port, socketDir, options.durabilityOff ?? false, options.settings));
        if (isRoot()) await fsp.chown(confFile, live.account.uid, live.account.gid);
        log(`postgres: starting on ${LOOPBACK}:${port}${options.durabilityOff ? " (durability off)" : ""}`);
        try {
            await runAsServer(live.account, live.pgCtl, ["start", "-D", live.dataDir, "-l", logFile, "-w", "-t", "60", "-s"], path.dirname(logFile));
            return port;
        } catch (error) {
            const serverLog = serverLogTail(logFile);
            const portTaken = /could not bind|Address already in use/i.test(serverLog);
            if (portTaken && options.port !== undefined) {
                throw new Error(`port ${options.port} on ${LOOPBACK} is in use; choose another port`);
            }
            if (!portTaken || attempt >= START_ATTEMPTS) {
                throw new Error(`pg_ctl start failed: ${(error as Error).message}\nserver log (${logFile}):\n${serverLog}`);
            }
        }
    }
}

async function withClient<T>(config: ClientConfig, action: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client(config);
    await client.connect();
    try {
        return await action(client);
    } finally {
        await client.end();
    }
}

async function createApplicationRole(superuser: ClientConfig, user: string, verifier: string, database: string): Promise<void> {
    await withClient(superuser, async (client) => {
        const role = client.escapeIdentifier(user);
        await client.query(`CREATE ROLE ${role} LOGIN PASSWORD ${client.escapeLiteral(verifier)}`);
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)} OWNER ${role}`);
    });
}

async function assertPasswordLoginWorks(config: ClientConfig): Promise<void> {
    await withClient(config, (client) => client.query("SELECT 1"));
}

async function stopCluster(live: LiveCluster, postmasterPid: number | undefined, log: (line: string) => void): Promise<void> {
    stopWatchdog(live);
    const pid = postmasterPid ?? readPostmasterPid(live.dataDir);
    if (pid !== undefined && isProcessAlive(pid)) {
        log(`postgres: stopping (postmaster ${pid})`);
        try {
            await runAsServer(live.account, live.pgCtl, ["stop", "-D", live.dataDir, "-m", "fast", "-w", "-t", "60", "-s"], "/");
        } catch {
            // A wedged server must not leak: stop it hard.
            process.kill(pid, "SIGQUIT");
            if (!(await waitUntil(() => !isProcessAlive(pid), 5_000))) process.kill(pid, "SIGKILL");
        }
    }
    for (const dir of live.removableDirs) await fsp.rm(dir, { recursive: true, force: true });
    liveClusters.delete(live);
    if (liveClusters.size === 0) uninstallSafetyNet();

    if (pid !== undefined && !(await waitUntil(() => !isProcessAlive(pid), 10_000))) {
        throw new Error(`postmaster ${pid} is still running after stop`);
    }
    const leftover = live.removableDirs.filter((dir) => fs.existsSync(dir));
    if (leftover.length > 0) throw new Error(`cluster directories still present after stop: ${leftover.join(", ")}`);
}

/**
 * Stops a detached cluster started with `stateDir` (by another process) and
 * removes the directory. Does nothing when the directory is already gone.
 */
export async function stopClusterInDir(stateDir: string, options: Pick<PostgresClusterOptions, "binDir" | "serverOsUser" | "log"> = {}): Promise<void> {
    const dataDir = path.join(stateDir, "data");
    if (!fs.existsSync(stateDir)) return;
    const binDir = options.binDir ?? findPostgresBinDir();
    if (!binDir) throw new PostgresNotInstalledError("cannot stop the cluster without pg_ctl");
    const live: LiveCluster = {
        account: resolveServerAccount(options.serverOsUser ?? "postgres"),
        pgCtl: path.join(binDir, "pg_ctl"),
        dataDir,
        removableDirs: [stateDir],
    };
    await stopCluster(live, readPostmasterPid(dataDir), options.log ?? (() => undefined));
}

/** Where a cluster lives, as decided by {@link clusterLocation}. */
export interface ClusterLocation {
    /** The directory to use (what `stateDir` gets). */
    dir: string;
    /** The directory asked for. */
    preferred: string;
    /** True when `dir` is the private stand-in for an unreachable `preferred`. */
    relocated: boolean;
}

/** True when the server's OS user can reach `dir` (search permission on it and every parent). */
export function serverCanReach(dir: string, serverOsUser = "postgres"): boolean {
    // Not root: the server runs as this process's own user.
    if (!isRoot()) return true;
    const account = resolveServerAccount(serverOsUser);
    const [program, ...prefixArgs] = [...account.commandPrefix, "test"];
    return spawnSync(program, [...prefixArgs, "-x", dir], { env: serverToolEnv(), cwd: "/", stdio: "ignore", timeout: 30_000 }).status === 0;
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

// ---------------------------------------------------------------------------
// A cluster from a copied data directory (the drill's pristine copies), and
// stopping and starting a detached cluster's server in place
// ---------------------------------------------------------------------------

/** The server major version of `binDir`'s postgres ("15"), as a data directory's PG_VERSION says it. */
export function serverMajorVersion(binDir = findPostgresBinDir()): string | undefined {
    if (!binDir) return undefined;
    const result = spawnSync(path.join(binDir, "postgres"), ["--version"], { encoding: "utf8", env: serverToolEnv() });
    return /\b(\d+)(?:\.\d+)*\b/.exec(result.stdout ?? "")?.[1];
}

/** What `<dataDir>/postmaster.pid` says of a running server: pid, port and socket directory. */
function postmasterInfo(dataDir: string): { pid: number; port: number; socketDir: string } | undefined {
    try {
        const lines = fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n");
        const pid = Number(lines[0]);
        const port = Number(lines[3]);
        const socketDir = (lines[4] ?? "").trim();
        return Number.isInteger(pid) && pid > 0 && Number.isInteger(port) && socketDir ? { pid, port, socketDir } : undefined;
    } catch {
        return undefined;
    }
}

/**
 * Sets the application role's password in the running detached cluster of
 * `stateDir` (`undefined`: clears it, PASSWORD NULL, and rewrites pg_authid
 * (VACUUM FULL), so its files no longer hold the old verifier even as a dead
 * row; then switches to a new WAL file and checkpoints, so a copy that keeps
 * only the next checkpoint's WAL file holds none of the earlier records), as
 * the bootstrap superuser over the cluster's private socket. Only the SCRAM
 * verifier reaches the server; nothing puts it in a process's arguments or the
 * log.
 */
export async function setRolePasswordInDir(stateDir: string, user: string, password: string | undefined): Promise<void> {
    const info = postmasterInfo(path.join(stateDir, "data"));
    if (!info || !isProcessAlive(info.pid)) throw new Error(`no server runs in ${stateDir}`);
    await withClient({ host: info.socketDir, port: info.port, user: BOOTSTRAP_SUPERUSER, database: "postgres" }, async (client) => {
        const verifier = password === undefined ? "NULL" : client.escapeLiteral(scramSha256Verifier(password));
        await client.query(`ALTER ROLE ${client.escapeIdentifier(user)} PASSWORD ${verifier}`);
        if (password !== undefined) return;
        await client.query("VACUUM FULL pg_catalog.pg_authid");
        await client.query("SELECT pg_switch_wal()");
        await client.query("CHECKPOINT");
    });
}

/** Stops the server of a detached cluster in `stateDir` cleanly (a shutdown checkpoint), keeping its files. */
export async function stopServerInDir(stateDir: string, options: Pick<PostgresClusterOptions, "binDir" | "serverOsUser" | "log"> = {}): Promise<void> {
    const dataDir = path.join(stateDir, "data");
    const pid = readPostmasterPid(dataDir);
    if (pid === undefined || !isProcessAlive(pid)) return;
    const binDir = options.binDir ?? findPostgresBinDir();
    if (!binDir) throw new PostgresNotInstalledError("cannot stop the cluster without pg_ctl");
    (options.log ?? (() => undefined))(`postgres: stopping (postmaster ${pid}), keeping ${dataDir}`);
    await runAsServer(resolveServerAccount(options.serverOsUser ?? "postgres"), path.join(binDir, "pg_ctl"), ["stop", "-D", dataDir, "-m", "fast", "-w", "-t", "60", "-s"], "/");
    if (!(await waitUntil(() => !isProcessAlive(pid), 10_000))) throw new Error(`postmaster ${pid} is still running after pg_ctl stop`);
}

/** Starts the server of a detached cluster in `stateDir` again, with the settings it was started with. Returns its postmaster's pid. */
export async function startServerInDir(stateDir: string, options: Pick<PostgresClusterOptions, "binDir" | "serverOsUser" | "log"> = {}): Promise<number> {
    const dataDir = path.join(stateDir, "data");
    const binDir = options.binDir ?? findPostgresBinDir();
    if (!binDir) throw new PostgresNotInstalledError("cannot start the cluster without pg_ctl");
    const logFile = path.join(stateDir, "postgres.log");
    (options.log ?? (() => undefined))(`postgres: starting ${dataDir} again`);
    try {
        await runAsServer(resolveServerAccount(options.serverOsUser ?? "postgres"), path.join(binDir, "pg_ctl"), ["start", "-D", dataDir, "-l", logFile, "-w", "-t", "60", "-s"], stateDir);
    } catch (error) {
        throw new Error(`pg_ctl start failed: ${(error as Error).message}\nserver log (${logFile}):\n${serverLogTail(logFile)}`);
    }
    const pid = readPostmasterPid(dataDir);
    if (pid === undefined) throw new Error(`server started but ${dataDir}/postmaster.pid is unreadable`);
    return pid;
}

/**
 * What `pg_controldata` says of a stopped cluster's data directory: its state
 * ("shut down" after a clean stop) and the WAL file of its last checkpoint's
 * REDO point, the only WAL a cleanly stopped cluster needs to start.
 */
export async function controlData(dataDir: string, binDir = findPostgresBinDir()): Promise<{ state: string; redoWalFile: string }> {
    if (!binDir) throw new PostgresNotInstalledError("cannot read the control file without pg_controldata");
    const { stdout } = await runCommand(path.join(binDir, "pg_controldata"), ["-D", dataDir], { env: { ...serverToolEnv(), LC_ALL: "C" } });
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(stdout)?.[1]?.trim() ?? "";
    return { state: field("Database cluster state"), redoWalFile: field("Latest checkpoint's REDO WAL file") };
}

/** Options for {@link startClusterFromCopy}. */
export interface ClusterFromCopyOptions extends Pick<PostgresClusterOptions, "user" | "durabilityOff" | "settings" | "binDir" | "serverOsUser" | "log"> {
    /** Absent or empty: receives `data` (the copy), the socket and the log, as {@link startPostgresCluster} lays them out. */
    stateDir: string;
    /** A cleanly stopped cluster's data directory, copied (never linked, never modified). */
    fromDataDir: string;
    port: number;
    /** The application role's new password (printable ASCII). */
    password: string;
}

/**
 * Starts a detached cluster (as `startPostgresCluster({ detached: true })`)
 * from a full copy of `fromDataDir` instead of initdb: the same settings file,
 * pg_hba rules, port and socket as a fresh one, and the application role's
 * password set again (whatever the copy held). Stop it with
 * {@link stopClusterInDir}. Cleans up after itself if any step fails.
 */
export async function startClusterFromCopy(options: ClusterFromCopyOptions): Promise<{ port: number; postmasterPid: number; dataDir: string; copySeconds: number; startSeconds: number }> {
    const log = options.log ?? (() => undefined);
    const user = options.user ?? "protea";
    scramSha256Verifier(options.password); // fails early on a password it cannot take
    if (!fs.existsSync(path.join(options.fromDataDir, "PG_VERSION"))) throw new Error(`${options.fromDataDir} is not a data directory`);
    const layout = await clusterLayout(options);
    const { account, rootDir, dataDir, logFile, socketDir, live } = layout;
    try {
        await prepareClusterFolders(layout);
        const copyStarted = Date.now();
        log(`postgres: copying ${options.fromDataDir} to ${dataDir} (no initdb)`);
        await runCommand("cp", ["-a", "--reflink=auto", "--", options.fromDataDir, dataDir]);
        if (isRoot() && fs.statSync(dataDir).uid !== account.uid) await runCommand("chown", ["-R", `${account.uid}:${account.gid}`, "--", dataDir]);
        await fsp.chmod(dataDir, 0o700);
        for (const file of ["postmaster.pid", "postmaster.opts"]) await fsp.rm(path.join(dataDir, file), { force: true });
        await fsp.writeFile(path.join(dataDir, "pg_hba.conf"), clusterHbaRules(BOOTSTRAP_SUPERUSER));
        const conf = fs.readFileSync(path.join(dataDir, "postgresql.conf"), "utf8");
        if (!conf.includes("include 'protea_cluster.conf'")) await fsp.appendFile(path.join(dataDir, "postgresql.conf"), "\ninclude 'protea_cluster.conf'\n");
        const copySeconds = (Date.now() - copyStarted) / 1000;

        const startStarted = Date.now();
        const port = await startOnFreePort(live, socketDir, logFile, { ...options, detached: true }, log);
        const postmasterPid = readPostmasterPid(dataDir);
        if (postmasterPid === undefined) throw new Error(`server started but ${dataDir}/postmaster.pid is unreadable`);
        await setRolePasswordInDir(rootDir, user, options.password);
        await assertPasswordLoginWorks({ host: LOOPBACK, port, user, password: options.password, database: "postgres" });
        log(`postgres: ready on ${LOOPBACK}:${port} (from a copy; role ${user}, scram-sha-256)`);
        return { port, postmasterPid, dataDir, copySeconds, startSeconds: (Date.now() - startStarted) / 1000 };
    } catch (error) {
        await stopCluster(live, undefined, log).catch(() => undefined);
        throw error;
    }
}

// ---------------------------------------------------------------------------
// vitest
// ---------------------------------------------------------------------------

/** The two vitest hooks the helper needs (passed in, so this module does not import vitest). */
export interface SuiteHooks {
    beforeAll(fn: () => unknown, timeout?: number): void;
    afterAll(fn: () => unknown, timeout?: number): void;
}

/**
 * Starts a cluster in `beforeAll` and stops and removes it in `afterAll`, so it
 * goes away even when a test fails; the process-exit handlers and the watchdog
 * cover a worker that dies. Returns an accessor for the running cluster.
 *
 * @example
 * const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll });
 * it("connects", async () => { const { clientConfig } = cluster(); … });
 */
export function useTemporaryPostgresCluster(
    hooks: SuiteHooks,
    options: PostgresClusterOptions = {},
    timeoutMs = 180_000,
): () => PostgresCluster {
    let cluster: PostgresCluster | undefined;
    hooks.beforeAll(async () => {
        cluster = await startPostgresCluster(options);
    }, timeoutMs);
    hooks.afterAll(async () => {
        await cluster?.stop();
    }, timeoutMs);
    return () => {
        if (!cluster) throw new Error("the PostgreSQL cluster is not running (did beforeAll fail?)");
        return cluster;
    };
}
