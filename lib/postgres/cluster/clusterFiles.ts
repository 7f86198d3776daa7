/**
 * A cluster's files: the settings and pg_hba rules written into its data
 * directory, and the postmaster.pid, control data and server log read back.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { runOrThrow, tail } from "../../process/processes";
import { serverToolEnv } from "./osAccount";
import { findPostgresBinDir, PostgresNotInstalledError } from "./serverBinaries";

/** The superuser initdb creates; it logs in over the private unix socket only. */
export const BOOTSTRAP_SUPERUSER = "postgres";
/** The only address the server listens on. */
export const LOOPBACK = "127.0.0.1";

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
    return `# Written by lib/postgres/cluster/clusterFiles.ts on every start attempt.\n${lines.join("\n")}\n`;
}

/** pg_hba.conf: socket trust for the bootstrap superuser only; SCRAM everywhere else. */
export function clusterHbaRules(superuser: string): string {
    return [
        "# Written by lib/postgres/cluster/clusterFiles.ts. The socket directory is 0700, so only",
        "# the server's OS user (and root) can use the passwordless superuser line.",
        `local   all   ${superuser}                 trust`,
        "local   all   all                      scram-sha-256",
        `host    all   all      ${LOOPBACK}/32    scram-sha-256`,
        "",
    ].join("\n");
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

/** What `<dataDir>/postmaster.pid` says of a running server: pid, port and socket directory. */
export function postmasterInfo(dataDir: string): { pid: number; port: number; socketDir: string } | undefined {
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

/** The server log's last 20 lines, for an error message. */
export function serverLogTail(logFile: string): string {
    try {
        return tail(fs.readFileSync(logFile, "utf8"), 20);
    } catch {
        return "(no server log)";
    }
}

/**
 * What `pg_controldata` says of a stopped cluster's data directory: its state
 * ("shut down" after a clean stop) and the WAL file of its last checkpoint's
 * REDO point, the only WAL a cleanly stopped cluster needs to start.
 */
export async function controlData(dataDir: string, binDir = findPostgresBinDir()): Promise<{ state: string; redoWalFile: string }> {
    if (!binDir) throw new PostgresNotInstalledError("cannot read the control file without pg_controldata");
    const { stdout } = await runOrThrow(path.join(binDir, "pg_controldata"), ["-D", dataDir], { env: { ...serverToolEnv(), LC_ALL: "C" } });
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(stdout)?.[1]?.trim() ?? "";
    return { state: field("Database cluster state"), redoWalFile: field("Latest checkpoint's REDO WAL file") };
}
