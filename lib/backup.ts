/**
 * The pre-flight backup: `pg_dump -F c` into `<dir>/<label>-<UTC>.dump`,
 * written 0600 under a `.partial` name and renamed only after `pg_restore
 * --list` has read it back, so a failed dump never leaves a file that could be
 * mistaken for a backup.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { clientTool, ClientToolTarget } from "./clientTools";
import { run, tail } from "./processes";

export interface BackupResult {
    path: string;
    sizeBytes: number;
    sha256: string;
    /** Entries in the dump's table of contents, as `pg_restore --list` reads them. */
    tocEntries: number;
    seconds: number;
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

/** Counts the entries `pg_restore --list` finds; throws if it cannot read the dump. */
export async function verifyDump(target: ClientToolTarget, file: string): Promise<number> {
    const tool = target.access === "docker-exec" ? clientTool(target, "pg_restore", ["--list"], true) : clientTool(target, "pg_restore", ["--list", file]);
    const listing = await withFd(file, "r", (fd) =>
        run(tool.program, tool.args, { env: { ...process.env, ...tool.env }, stdin: target.access === "docker-exec" ? fd : undefined }),
    );
    if (listing.code !== 0) {
        throw new Error(`pg_restore --list cannot read ${file} (exit ${listing.code}): the dump is not a valid backup:\n${tail(listing.stderr)}`);
    }
    return listing.stdout.split("\n").filter((line) => line.trim() !== "" && !line.startsWith(";")).length;
}

export async function takeBackup(target: ClientToolTarget, dir: string, label: string, log: (line: string) => void = () => {}): Promise<BackupResult> {
    const started = Date.now();
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const finalPath = path.join(dir, `${label}-${utcStamp()}.dump`);
    const partialPath = `${finalPath}.partial`;
    if (fs.existsSync(finalPath)) throw new Error(`${finalPath} already exists; refusing to overwrite a backup`);

    log(`backup: pg_dump -F c of ${target.access === "docker-exec" ? `${target.dbName} in container ${target.container}` : target.database.database} -> ${finalPath}`);
    try {
        const dump = clientTool(target, "pg_dump", ["-F", "c"]);
        const result = await withFd(partialPath, "wx", (fd) => run(dump.program, dump.args, { env: { ...process.env, ...dump.env }, stdout: fd }));
        if (result.code !== 0) {
            throw new Error(`pg_dump failed (exit ${result.code}); no backup was written:\n${tail(result.stderr)}`);
        }
        await withFd(partialPath, "r+", async (fd) => fs.fsyncSync(fd));
        const tocEntries = await verifyDump(target, partialPath);
        fs.renameSync(partialPath, finalPath);
        const sizeBytes = fs.statSync(finalPath).size;
        const sha256 = await sha256OfFile(finalPath);
        log(`backup: verified with pg_restore --list (${tocEntries} entries), ${sizeBytes} bytes, sha256 ${sha256}`);
        return { path: finalPath, sizeBytes, sha256, tocEntries, seconds: (Date.now() - started) / 1000 };
    } finally {
        fs.rmSync(partialPath, { force: true });
    }
}
