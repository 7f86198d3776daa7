/**
 * The drill's pristine copies: a re-drill from the same source dump in seconds.
 *
 * The first local drill from a dump restores it (minutes for a GB), stops the
 * clone's server cleanly and keeps a copy of its data directory, before the
 * rollout touches it, in `.state/drill-pristine/<sha256 of the dump>/data`.
 * A later drill from a dump with the same content copies that directory into
 * its new cluster folder instead of running initdb and pg_restore (seconds).
 *
 * - Keyed by the dump's content: the SHA-256 of the file, computed every time
 *   (about 1.7 s per GB here with node's OpenSSL; `<dump>.sha256` beside a
 *   backup is not trusted, since nothing ties it to the bytes next to it).
 * - Never modified by a drill: a clone is a full copy (`cp -a`, never hard
 *   links), the pristine is root's 0700 folder (the server's OS user cannot
 *   write to it), and no server ever runs on it.
 * - Never half-used: it is written under `.tmp-<sha>-<pid>-<random>`, every file
 *   and folder fsynced, `pristine.json` written last, then renamed to `<sha>`
 *   in one step; only a `<sha>` folder with a matching `pristine.json` counts.
 *   A temp folder left by a killed drill is removed by the next save.
 * - Holds no credential: the application role's password is cleared (NULL)
 *   before the copy, and a clone sets the drill's own again (its SCRAM
 *   verifier, from the environment, never from arguments).
 * - A pristine whose dump is gone is only disk space: nothing reads it unless
 *   a dump with that exact content comes back; `protea-drill-db pristine
 *   --prune` removes those, `--drop` one dump's.
 */
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { resolveDrillPath } from "../config/drillConfig";

/** Where the pristine copies live, relative to the project root. */
export const PRISTINE_ROOT_SETTING = path.posix.join(".state", "drill-pristine");

/** The marker of a complete pristine, written last, inside `<root>/<sha>/`. */
export const PRISTINE_META = "pristine.json";

export interface PristineMeta {
    format: 1;
    /** SHA-256 of the source dump's bytes: the key, and the folder's name. */
    sha256: string;
    /** The dump as it was when the pristine was made (for people, and for --prune). */
    dumpPath: string;
    dumpBytes: number;
    /** The data directory's PG_VERSION (a clone needs the same server major version). */
    pgVersion: string;
    /** Bytes of the data directory copy. */
    dataBytes: number;
    createdAt: string;
}

export interface Pristine {
    dir: string;
    dataDir: string;
    meta: PristineMeta;
}

export function pristineRoot(): string {
    return resolveDrillPath(PRISTINE_ROOT_SETTING);
}

const SHA256 = /^[0-9a-f]{64}$/;

/** The SHA-256 of a file's bytes, streamed (about 1.7 s per GB on this machine, warm cache). */
export function sha256File(file: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const hash = crypto.createHash("sha256");
        fs.createReadStream(file, { highWaterMark: 4 * 2 ** 20 })
            .on("data", (chunk) => hash.update(chunk))
            .on("error", reject)
            .on("end", () => resolve(hash.digest("hex")));
    });
}

/** `sha` as a display prefix, "3f2a9c1b0d4e". */
export const shaPrefix = (sha: string) => sha.slice(0, 12);

/** The complete pristine for `sha256` (optionally: only for this server major version), or undefined. */
export function findPristine(sha256: string, options: { pgVersion?: string; root?: string } = {}): Pristine | undefined {
    if (!SHA256.test(sha256)) return undefined;
    const dir = path.join(options.root ?? pristineRoot(), sha256);
    let meta: PristineMeta;
    try {
        meta = JSON.parse(fs.readFileSync(path.join(dir, PRISTINE_META), "utf8")) as PristineMeta;
    } catch {
        return undefined;
    }
    const dataDir = path.join(dir, "data");
    if (meta.format !== 1 || meta.sha256 !== sha256 || !fs.existsSync(path.join(dataDir, "PG_VERSION"))) return undefined;
    if (options.pgVersion !== undefined && meta.pgVersion !== options.pgVersion) return undefined;
    return { dir, dataDir, meta };
}

/** Every complete pristine under the root. */
export function listPristines(root = pristineRoot()): Pristine[] {
    if (!fs.existsSync(root)) return [];
    return fs.readdirSync(root).filter((name) => SHA256.test(name)).map((name) => findPristine(name, { root })).filter((p): p is Pristine => p !== undefined);
}

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

async function fsyncPath(file: string): Promise<void> {
    const handle = await fsp.open(file, "r");
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}

/** fsync every file and folder below `dir` (files first), and `dir` itself. */
async function fsyncTree(dir: string): Promise<void> {
    for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await fsyncTree(full);
        else if (entry.isFile()) await fsyncPath(full);
    }
    await fsyncPath(dir);
}

function processAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM";
    }
}

/** Temp folders of saves whose process is gone (a drill killed mid-copy): never used, removed here. */
export async function removeAbandonedTemps(root = pristineRoot()): Promise<string[]> {
    if (!fs.existsSync(root)) return [];
    const removed: string[] = [];
    for (const name of await fsp.readdir(root)) {
        const match = /^\.(tmp|old)-[0-9a-f]{64}-(\d+)-[0-9a-f]+$/.exec(name);
        if (!match || processAlive(Number(match[2]))) continue;
        await fsp.rm(path.join(root, name), { recursive: true, force: true });
        removed.push(name);
    }
    return removed;
}

/**
 * Keeps a copy of `dataDir` (a cleanly stopped cluster's data directory) as the
 * pristine of `meta.sha256`, replacing an older one of the same key. Written
 * under a temp name, fsynced, marked complete, then renamed in one step.
 */
export async function savePristine(
    dataDir: string,
    meta: Omit<PristineMeta, "format" | "dataBytes" | "createdAt" | "pgVersion">,
    options: { onlyWalFile?: string; root?: string } = {},
): Promise<Pristine> {
    const root = options.root ?? pristineRoot();
    if (!SHA256.test(meta.sha256)) throw new Error(`not a SHA-256: ${meta.sha256}`);
    await fsp.mkdir(root, { recursive: true, mode: 0o700 });
    await fsp.chmod(root, 0o700);
    await removeAbandonedTemps(root);
    const tag = `${meta.sha256}-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
    const temp = path.join(root, `.tmp-${tag}`);
    const final = path.join(root, meta.sha256);
    await fsp.mkdir(temp, { mode: 0o700 });
    try {
        await copyDataDir(dataDir, path.join(temp, "data"), { onlyWalFile: options.onlyWalFile });
        // A clone gets its own settings, socket and pid file: none of the source's.
        for (const file of ["postmaster.pid", "postmaster.opts"]) await fsp.rm(path.join(temp, "data", file), { force: true });
        const full: PristineMeta = {
            format: 1,
            ...meta,
            pgVersion: fs.readFileSync(path.join(dataDir, "PG_VERSION"), "utf8").trim(),
            dataBytes: treeBytes(path.join(temp, "data")),
            createdAt: new Date().toISOString(),
        };
        await fsyncTree(path.join(temp, "data"));
        await fsp.writeFile(path.join(temp, PRISTINE_META), `${JSON.stringify(full, null, 2)}\n`, { mode: 0o600 });
        await fsyncPath(path.join(temp, PRISTINE_META));
        await fsyncPath(temp);
        if (fs.existsSync(final)) {
            // Replace (--fresh): the old one leaves under a name no drill reads, then goes.
            const old = path.join(root, `.old-${tag}`);
            await fsp.rename(final, old);
            await fsp.rename(temp, final);
            await fsp.rm(old, { recursive: true, force: true });
        } else {
            await fsp.rename(temp, final);
        }
        await fsyncPath(root);
        return { dir: final, dataDir: path.join(final, "data"), meta: full };
    } catch (err) {
        await fsp.rm(temp, { recursive: true, force: true });
        throw err;
    }
}

/** Removes the pristine of `sha256` (if any); true when one was there. */
export async function dropPristine(sha256: string, root = pristineRoot()): Promise<boolean> {
    if (!SHA256.test(sha256)) return false;
    const dir = path.join(root, sha256);
    if (!fs.existsSync(dir)) return false;
    // Renamed first, so no drill starts copying a folder that is half removed.
    const gone = path.join(root, `.old-${sha256}-${process.pid}-${crypto.randomBytes(4).toString("hex")}`);
    await fsp.rename(dir, gone);
    await fsp.rm(gone, { recursive: true, force: true });
    return true;
}

/**
 * The pristines a drill from `dump` would use or has made: the one keyed by the
 * dump's current content (when the file exists), and any made from a file at
 * this path (its content may have changed since).
 */
export async function pristinesOfDump(dump: string, root = pristineRoot()): Promise<{ sha256?: string; pristines: Pristine[] }> {
    const sha256 = fs.existsSync(dump) ? await sha256File(dump) : undefined;
    const pristines = listPristines(root).filter((p) => p.meta.sha256 === sha256 || path.resolve(p.meta.dumpPath) === path.resolve(dump));
    return { sha256, pristines };
}

/** Pristines whose dump no longer exists at its path with that content (size first; the hash only when the size matches). */
export async function stalePristines(root = pristineRoot()): Promise<Pristine[]> {
    const stale: Pristine[] = [];
    for (const p of listPristines(root)) {
        const there = fs.existsSync(p.meta.dumpPath) && fs.statSync(p.meta.dumpPath).size === p.meta.dumpBytes;
        if (!there || (await sha256File(p.meta.dumpPath)) !== p.meta.sha256) stale.push(p);
    }
    return stale;
}

/** What a drill's load step did, for the report (written by `protea-drill-db load-dump`). */
export interface LoadRecord {
    /** `restored`: pg_restore ran (and a pristine was kept unless `pristineError`); `cloned`: a copy of the pristine. */
    mode: "restored" | "cloned";
    sha256?: string;
    /** Seconds hashing the dump. */
    hashSeconds?: number;
    /** restored: pg_restore's seconds. */
    restoreSeconds?: number;
    /** restored: seconds keeping the pristine (stop, copy, fsync, start). */
    pristineSeconds?: number;
    /** restored: why no pristine was kept. */
    pristineError?: string;
    /** cloned: seconds copying the pristine's data directory, and starting the server on it with the drill's password. */
    copySeconds?: number;
    startSeconds?: number;
    /** The pristine's folder and size, and when it was made. */
    pristineDir?: string;
    pristineBytes?: number;
    pristineCreatedAt?: string;
    /** Wall seconds of the whole load (hash + restore + pristine, or hash + copy + start). */
    seconds: number;
}

/** The load record's file in the cluster's folder (removed with it). */
export const LOAD_RECORD = "drill-load.json";

/** One line for people: "cloned from pristine 3f2a9c1b0d4e in 3.1 s" / "restored in 84.0 s; pristine … kept". */
export function describeLoad(record: LoadRecord): string {
    const s = (n: number | undefined) => `${(n ?? 0).toFixed(1)} s`;
    const gib = (n: number | undefined) => (n === undefined ? "?" : n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);
    const sha = record.sha256 ? shaPrefix(record.sha256) : "?";
    if (record.mode === "cloned") {
        return `cloned from pristine ${sha} in ${s(record.seconds)} (sha256 ${s(record.hashSeconds)}, copy of ${gib(record.pristineBytes)} ${s(record.copySeconds)}, start ${s(record.startSeconds)}; no pg_restore)`;
    }
    const kept = record.pristineError
        ? `no pristine kept: ${record.pristineError}`
        : `pristine ${sha} kept for the next drill (${gib(record.pristineBytes)}, ${s(record.pristineSeconds)})`;
    return `restored in ${s(record.seconds)} (sha256 ${s(record.hashSeconds)}, pg_restore ${s(record.restoreSeconds)}); ${kept}`;
}
