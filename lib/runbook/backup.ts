/**
 * The pre-flight backup: `pg_dump -F c` into `<dir>/<label>-<UTC>.dump`,
 * written 0600 under a `.partial` name and renamed only after `pg_restore
 * --list` has read it back, so a failed dump never leaves a file that could be
 * mistaken for a backup.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { clientTool, ClientToolTarget } from "../postgres/clientTools";
import { backupDirProblems, DEFAULT_BACKUP_COMPRESSION } from "../config/config";
import { formatBytes } from "../process/format";
import { run, tail } from "../process/processes";

/** A dump taken before an earlier apply, kept on disk and in this list. */
export interface EarlierBackup {
    path: string;
    sha256: string;
    sizeBytes: number;
}

export interface BackupResult {
    path: string;
    sizeBytes: number;
    sha256: string;
    /** Entries in the dump's table of contents, as `pg_restore --list` reads them. */
    tocEntries: number;
    seconds: number;
    /** Dumps taken before earlier applies of this stack, newest first. */
    earlier: EarlierBackup[];
}

/** The sidecar that records a dump's SHA-256 beside it, as `sha256sum` writes it. */
export const checksumFile = (dump: string) => `${dump}.sha256`;

/** The SHA-256 recorded beside a dump, if any. */
export function recordedChecksum(dump: string): string | undefined {
    try {
        return /^([0-9a-f]{64})\b/.exec(fs.readFileSync(checksumFile(dump), "utf8"))?.[1];
    } catch {
        return undefined;
    }
}

/**
 * Fails, naming rollout:backupDir, unless a dump can be written to `dir`:
 * not a kernel file system, its nearest existing folder is a folder and
 * writable, and (when known) there is room for `neededBytes`. Changes nothing.
 */
export function checkBackupDir(dir: string, neededBytes?: number): void {
    const problems = backupDirProblems(dir);
    if (problems.length > 0) throw new Error(problems[0]);
    let existing = dir;
    while (!fs.existsSync(existing)) existing = path.dirname(existing);
    if (!fs.statSync(existing).isDirectory()) throw new Error(`rollout:backupDir: ${existing} is a file, not a folder, so ${dir} cannot be created`);
    try {
        fs.accessSync(existing, fs.constants.W_OK | fs.constants.X_OK);
    } catch {
        throw new Error(`rollout:backupDir: ${existing} is not writable${existing === dir ? "" : `, so ${dir} cannot be created`} (read-only mount or permissions)`);
    }
    if (neededBytes !== undefined) {
        const stats = fs.statfsSync(existing);
        const free = stats.bavail * stats.bsize;
        if (free < neededBytes) {
            throw new Error(`rollout:backupDir: ${existing} has ${formatBytes(free)} free, but the dump needs about ${formatBytes(neededBytes)}: free space or choose another folder`);
        }
    }
}

/** The dumps an earlier run of this step recorded (its previous output, if any), newest first. */
export function earlierBackups(previousStdout: string | undefined): EarlierBackup[] {
    if (!previousStdout) return [];
    try {
        const previous = JSON.parse(previousStdout.trim().split("\n").pop() ?? "") as Partial<BackupResult>;
        if (typeof previous.path !== "string" || typeof previous.sha256 !== "string") return [];
        return [{ path: previous.path, sha256: previous.sha256, sizeBytes: previous.sizeBytes ?? 0 }, ...(previous.earlier ?? [])];
    } catch {
        return [];
    }
}

export function utcStamp(date = new Date()): string {
    const iso = date.toISOString(); // 2026-11-25T15:04:05.123Z
    return `${iso.slice(0, 10).replace(/-/g, "")}-${iso.slice(11, 19).replace(/:/g, "")}`;
}

export async function sha256OfFile(file: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
    return hash.digest("hex");
}

async function withFd<T>(file: string, flags: string, use: (fd: number) => Promise<T>): Promise<T> {
    const fd = fs.openSync(file, flags, 0o600);
    try {
        return await use(fd);
    } finally {
        fs.closeSync(fd);
    }
}

/** The dump's table of contents as `pg_restore --list` prints it; throws if it cannot read the dump. */
export async function readDumpListing(target: ClientToolTarget, file: string): Promise<string> {
    const tool = target.access === "docker-exec" ? clientTool(target, "pg_restore", ["--list"], true) : clientTool(target, "pg_restore", ["--list", file]);
    const listing = await withFd(file, "r", (fd) =>
        run(tool.program, tool.args, { env: { ...process.env, ...tool.env }, stdin: target.access === "docker-exec" ? fd : undefined }),
    );
    if (listing.code !== 0 && /unsupported version .* in file header/.test(listing.stderr)) {
        // A newer pg_dump's format, not damage: the checksum already matched.
        const where = target.access === "docker-exec" ? `in container ${target.container}` : "on this host";
        throw new Error(`pg_restore ${where} is older than the pg_dump that wrote ${file} and cannot read it (${tail(listing.stderr, 1)}): use a pg_restore of the server's version or newer (rollout:pgAccess docker-exec runs the container's own)`);
    }
    if (listing.code !== 0) {
        throw new Error(`pg_restore --list cannot read ${file} (exit ${listing.code}): the dump is not a valid backup:\n${tail(listing.stderr)}`);
    }
    return listing.stdout;
}

/** The entries of a dump's table of contents. */
export const tocEntries = (listing: string) => listing.split("\n").filter((line) => line.trim() !== "" && !line.startsWith(";")).length;

/** Counts the entries `pg_restore --list` finds; throws if it cannot read the dump. */
export async function verifyDump(target: ClientToolTarget, file: string): Promise<number> {
    return tocEntries(await readDumpListing(target, file));
}

/** pg_dump's gzip levels (`-Z`): 0 writes the data uncompressed, 9 smallest and slowest. */
export const COMPRESSION_LEVELS = { min: 0, max: 9 } as const;

/**
 * `compression`: the gzip level of `pg_dump -F c -Z N` (rollout:backupCompression;
 * see bench/backup.ts); any level stays a custom-format dump pg_restore reads.
 */
export async function takeBackup(
    target: ClientToolTarget,
    dir: string,
    label: string,
    log: (line: string) => void = () => {},
    earlier: EarlierBackup[] = [],
    compression: number = DEFAULT_BACKUP_COMPRESSION,
): Promise<BackupResult> {
    const started = Date.now();
    if (!Number.isInteger(compression) || compression < COMPRESSION_LEVELS.min || compression > COMPRESSION_LEVELS.max) {
        throw new Error(`rollout:backupCompression must be a gzip level from ${COMPRESSION_LEVELS.min} to ${COMPRESSION_LEVELS.max}, got ${compression}`);
    }
    checkBackupDir(dir);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const finalPath = path.join(dir, `${label}-${utcStamp()}.dump`);
    const partialPath = `${finalPath}.partial`;
    if (fs.existsSync(finalPath)) throw new Error(`${finalPath} already exists; refusing to overwrite a backup`);

    log(`backup: pg_dump -F c of ${target.access === "docker-exec" ? `${target.dbName} in container ${target.container}` : target.database.database} -> ${finalPath} (-Z ${compression}, rollout:backupCompression)`);
    try {
        const dump = clientTool(target, "pg_dump", ["-F", "c", "-Z", String(compression)]);
        const result = await withFd(partialPath, "wx", (fd) => run(dump.program, dump.args, { env: { ...process.env, ...dump.env }, stdout: fd }));
        if (result.code !== 0) {
            throw new Error(`pg_dump failed (exit ${result.code}); no backup was written:\n${tail(result.stderr)}`);
        }
        await withFd(partialPath, "r+", async (fd) => fs.fsyncSync(fd));
        const tocEntries = await verifyDump(target, partialPath);
        fs.renameSync(partialPath, finalPath);
        const sizeBytes = fs.statSync(finalPath).size;
        const sha256 = await sha256OfFile(finalPath);
        fs.writeFileSync(checksumFile(finalPath), `${sha256}  ${path.basename(finalPath)}\n`, { mode: 0o600 });
        log(`backup: verified with pg_restore --list (${tocEntries} entries), ${sizeBytes} bytes, sha256 ${sha256}`);
        return { path: finalPath, sizeBytes, sha256, tocEntries, seconds: (Date.now() - started) / 1000, earlier };
    } finally {
        fs.rmSync(partialPath, { force: true });
    }
}
