/**
 * Where the PostgreSQL server binaries (initdb, pg_ctl, postgres) are: found on
 * this machine, or installed from Debian's `postgresql` package when root.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { runOrThrow } from "../../process/processes";
import { isRoot, serverToolEnv } from "./osAccount";

/** How to find the server binaries; part of every cluster's options. */
export interface ServerBinaryOptions {
    /** Directory with initdb, pg_ctl and postgres. Defaults to the search in {@link findPostgresBinDir}. */
    binDir?: string;
    /** When the binaries are missing and this process is root, apt-get install Debian's `postgresql`. Defaults to true. */
    installIfMissing?: boolean;
    /** Receives one line per step (never a secret). Defaults to discarding them. */
    log?: (line: string) => void;
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

/**
 * Returns the server binary directory, installing Debian's `postgresql`
 * with apt-get first when it is missing and this process is root.
 */
export async function ensurePostgresBinDir(options: ServerBinaryOptions = {}): Promise<string> {
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
    await runOrThrow("apt-get", ["update", "-qq"], { env: aptEnv });
    log("postgres: apt-get install postgresql");
    await runOrThrow("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "postgresql"], { env: aptEnv });
    const installed = findPostgresBinDir();
    if (!installed) throw new PostgresNotInstalledError("apt-get installed 'postgresql' but the binaries are still missing");
    return installed;
}

/** The server major version of `binDir`'s postgres ("15"), as a data directory's PG_VERSION says it. */
export function serverMajorVersion(binDir = findPostgresBinDir()): string | undefined {
    if (!binDir) return undefined;
    const result = spawnSync(path.join(binDir, "postgres"), ["--version"], { encoding: "utf8", env: serverToolEnv() });
    return /\b(\d+)(?:\.\d+)*\b/.exec(result.stdout ?? "")?.[1];
}
