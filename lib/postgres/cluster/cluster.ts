/**
 * A throwaway PostgreSQL cluster for tests and the local drill: started with
 * initdb and pg_ctl on a free 127.0.0.1 port, stopped and removed again.
 *
 * `startPostgresCluster()` keeps the data directory, unix socket directory and
 * server log under one directory that `stop()` removes again. Authentication:
 * the bootstrap superuser may use the private unix socket without a password
 * (the socket directory is 0700); every other connection, and all of TCP,
 * needs SCRAM-SHA-256. The application role's password is random and never
 * leaves this process in clear text: the server only ever sees its SCRAM
 * verifier, and nothing puts it in a process's arguments. A failing or killed
 * test leaves nothing behind (watchdog.ts).
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import type { ClientConfig } from "pg";
import type { LibpqSettings } from "../../config/databaseUrl";
import { findFreePort } from "../../process/freePort";
import { isProcessAlive, waitUntil } from "../../process/processes";
import { withDatabase } from "../database";
import { BOOTSTRAP_SUPERUSER, clusterHbaRules, clusterSettings, LOOPBACK, readPostmasterPid, serverLogTail } from "./clusterFiles";
import { clusterLayout, prepareClusterFolders } from "./clusterLayout";
import { isRoot, resolveServerAccount, runAsServer } from "./osAccount";
import { generatePassword, scramSha256Verifier } from "./scram";
import { findPostgresBinDir, PostgresNotInstalledError, type ServerBinaryOptions } from "./serverBinaries";
import { forgetLiveCluster, guardLiveCluster, startWatchdog, stopWatchdog, type LiveCluster } from "./watchdog";

/** Options for {@link startPostgresCluster}. */
export interface PostgresClusterOptions extends ServerBinaryOptions {
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
    /** OS user that runs initdb/pg_ctl/postgres when this process is root. Defaults to "postgres" (created by Debian's package). */
    serverOsUser?: string;
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

const START_ATTEMPTS = 4;

function buildUrls(user: string, password: string, port: number, database: string) {
    const credentials = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
    const address = `${LOOPBACK}:${port}/${encodeURIComponent(database)}`;
    return {
        libpqUrl: `postgresql://${credentials}@${address}`,
        sqlalchemyUrl: `postgresql+psycopg://${credentials}@${address}`,
    };
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
    if (!options.detached) guardLiveCluster(live);

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

        const superuserClientConfig: LibpqSettings = { host: socketDir, port, user: BOOTSTRAP_SUPERUSER, database: "postgres" };
        await createApplicationRole(superuserClientConfig, user, verifier, database);
        const clientConfig: LibpqSettings = { host: LOOPBACK, port, user, password, database };
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

/** Writes the cluster's settings and starts its server, on `options.port` or (retrying when another process takes it first) a free one. */
export async function startOnFreePort(
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

async function createApplicationRole(superuser: LibpqSettings, user: string, verifier: string, database: string): Promise<void> {
    await withDatabase(superuser, async (client) => {
        const role = client.escapeIdentifier(user);
        await client.query(`CREATE ROLE ${role} LOGIN PASSWORD ${client.escapeLiteral(verifier)}`);
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)} OWNER ${role}`);
    });
}

export async function assertPasswordLoginWorks(settings: LibpqSettings): Promise<void> {
    await withDatabase(settings, (client) => client.query("SELECT 1"));
}

/** Stops the server (hard when a clean stop fails) and removes the cluster's directories. */
export async function stopCluster(live: LiveCluster, postmasterPid: number | undefined, log: (line: string) => void): Promise<void> {
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
    forgetLiveCluster(live);

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
