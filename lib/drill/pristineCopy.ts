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
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { resolveDrillPath } from "../config/drillConfig";
import { copyDataDir, fsyncPath, fsyncTree, treeBytes } from "./dataDirCopy";

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
