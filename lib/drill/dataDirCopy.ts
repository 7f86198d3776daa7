/** A full copy of a PostgreSQL data directory (optionally only its last checkpoint's WAL file), its size, and fsyncing a tree. */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";

function runQuiet(command: string, args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} failed (exit ${code}): ${stderr.trim().slice(-500)}`))));
    });
}

/**
 * A full copy of a data directory, owners and modes kept (`cp -a`: never hard
 * links; `--reflink=auto` shares blocks only where the filesystem copies on
 * write, so either side's writes never reach the other). `to` must not exist.
 */
export async function copyDataDir(from: string, to: string, options: { onlyWalFile?: string } = {}): Promise<void> {
    const cp = (sources: string[], into: string) => (sources.length ? runQuiet("cp", ["-a", "--reflink=auto", "--", ...sources, into]) : Promise.resolve());
    if (!options.onlyWalFile) return cp([from], to);
    // A cleanly stopped cluster needs only its last checkpoint's WAL file: the segments before it are
    // spent, those after it recycled leftovers (after a big restore, as much again as the data).
    const wal = path.join(from, "pg_wal");
    if (!fs.lstatSync(wal).isDirectory()) throw new Error(`${wal} is not a directory (a WAL folder elsewhere is not supported)`);
    if (!fs.existsSync(path.join(wal, options.onlyWalFile))) throw new Error(`${wal} lacks ${options.onlyWalFile}, its last checkpoint's WAL file`);
    const stat = fs.statSync(from);
    await fsp.mkdir(to, { mode: stat.mode & 0o7777 });
    await cp(fs.readdirSync(from).filter((name) => name !== "pg_wal").map((name) => path.join(from, name)), to);
    const walStat = fs.statSync(wal);
    await fsp.mkdir(path.join(to, "pg_wal"), { mode: walStat.mode & 0o7777 });
    const segment = /^[0-9A-F]{24}$/;
    await cp(fs.readdirSync(wal).filter((name) => !segment.test(name) || name === options.onlyWalFile).map((name) => path.join(wal, name)), path.join(to, "pg_wal"));
    for (const [dir, st] of [[to, stat], [path.join(to, "pg_wal"), walStat]] as const) {
        await fsp.chmod(dir, st.mode & 0o7777);
        if (process.getuid?.() === 0) await fsp.chown(dir, st.uid, st.gid);
    }
}

/** Sum of file sizes below `dir`. */
export function treeBytes(dir: string): number {
    let total = 0;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) total += treeBytes(full);
        else if (entry.isFile()) total += fs.statSync(full).size;
    }
    return total;
}

/** fsync one file or folder. */
export async function fsyncPath(file: string): Promise<void> {
    const handle = await fsp.open(file, "r");
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}

/** fsync every file and folder below `dir` (files first), and `dir` itself. */
export async function fsyncTree(dir: string): Promise<void> {
    for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await fsyncTree(full);
        else if (entry.isFile()) await fsyncPath(full);
    }
    await fsyncPath(dir);
}
