/**
 * Safety nets, so a failing or killed test leaves no cluster behind: every live
 * cluster is stopped on process exit and on SIGINT/SIGTERM/SIGHUP, and a tiny
 * detached watchdog stops it and removes its directory if this process dies
 * without running either (SIGKILL, a crashed test worker).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import { isProcessAlive } from "../../process/processes";
import { readPostmasterPid } from "./clusterFiles";
import { runAsServerSync, serverToolEnv, type ServerAccount } from "./osAccount";

/** A cluster this process started and must not leak. */
export interface LiveCluster {
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

/** Stops `live` on this process's exit or an exit signal, until {@link forgetLiveCluster}. */
export function guardLiveCluster(live: LiveCluster): void {
    liveClusters.add(live);
    installSafetyNet();
}

/** `live` is stopped: no exit handler for it any more (and none at all once no cluster is left). */
export function forgetLiveCluster(live: LiveCluster): void {
    liveClusters.delete(live);
    if (liveClusters.size === 0) uninstallSafetyNet();
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

/** Starts the detached watchdog that stops `live` and removes its directories once this process is gone. */
export function startWatchdog(live: LiveCluster): ChildProcess {
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

export function stopWatchdog(live: LiveCluster): void {
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
