/**
 * The drill's detached clusters: started from a copied data directory instead
 * of initdb, their server stopped and started in place, their role's password set.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { isProcessAlive, runOrThrow, waitUntil } from "../../process/processes";
import { withDatabase } from "../database";
import { assertPasswordLoginWorks, startOnFreePort, stopCluster, type PostgresClusterOptions } from "./cluster";
import { BOOTSTRAP_SUPERUSER, clusterHbaRules, LOOPBACK, postmasterInfo, readPostmasterPid, serverLogTail } from "./clusterFiles";
import { clusterLayout, prepareClusterFolders } from "./clusterLayout";
import { isRoot, resolveServerAccount, runAsServer } from "./osAccount";
import { scramSha256Verifier } from "./scram";
import { findPostgresBinDir, PostgresNotInstalledError } from "./serverBinaries";

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
    await withDatabase({ host: info.socketDir, port: info.port, user: BOOTSTRAP_SUPERUSER, database: "postgres" }, async (client) => {
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
        await runOrThrow("cp", ["-a", "--reflink=auto", "--", options.fromDataDir, dataDir]);
        if (isRoot() && fs.statSync(dataDir).uid !== account.uid) await runOrThrow("chown", ["-R", `${account.uid}:${account.gid}`, "--", dataDir]);
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
