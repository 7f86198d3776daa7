/**
 * The drill's pristine copies (lib/drill/pristineCopy.ts) on plain folders: only a
 * complete copy counts, a half-written one is never used and is cleaned up,
 * a refresh replaces in one step, the WAL is trimmed to the checkpoint's
 * file, and the report's line. The real thing (a cluster) is in
 * test/integration/redrill.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { copyDataDir } from "../../lib/drill/dataDirCopy";
import { describeLoad } from "../../lib/drill/loadRecord";
import {
    dropPristine, findPristine, listPristines, PRISTINE_META, pristinesOfDump, removeAbandonedTemps, savePristine, sha256File, stalePristines,
} from "../../lib/drill/pristineCopy";

let dir = "";
let root = "";
let dataDir = "";
let dump = "";
let sha = "";

/** A folder shaped like a stopped cluster's data directory. */
function fakeDataDir(at: string): void {
    fs.mkdirSync(path.join(at, "base", "1"), { recursive: true });
    fs.mkdirSync(path.join(at, "pg_wal", "archive_status"), { recursive: true });
    fs.writeFileSync(path.join(at, "PG_VERSION"), "15\n");
    fs.writeFileSync(path.join(at, "base", "1", "1259"), "table bytes");
    for (const seg of ["000000010000000000000003", "000000010000000000000004", "000000010000000000000005"]) fs.writeFileSync(path.join(at, "pg_wal", seg), seg);
    fs.writeFileSync(path.join(at, "postmaster.opts"), "old options");
}

beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pristine-unit-"));
    root = path.join(dir, "pristine");
    dataDir = path.join(dir, "data");
    fakeDataDir(dataDir);
    dump = path.join(dir, "x.dump");
    fs.writeFileSync(dump, "dump bytes");
    sha = await sha256File(dump);
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("pristine copies", () => {
    it("keys a copy by the dump's SHA-256, keeps only the checkpoint's WAL file, and drops the pid files", async () => {
        expect(sha).toMatch(/^[0-9a-f]{64}$/);
        const saved = await savePristine(dataDir, { sha256: sha, dumpPath: dump, dumpBytes: 10 }, { root, onlyWalFile: "000000010000000000000004" });
        expect(saved.dir).toBe(path.join(root, sha));
        expect(fs.readdirSync(path.join(saved.dataDir, "pg_wal")).sort()).toEqual(["000000010000000000000004", "archive_status"]);
        expect(fs.existsSync(path.join(saved.dataDir, "postmaster.opts"))).toBe(false);
        expect(fs.readFileSync(path.join(saved.dataDir, "base", "1", "1259"), "utf8")).toBe("table bytes");
        expect(findPristine(sha, { root })?.meta).toMatchObject({ format: 1, sha256: sha, pgVersion: "15", dumpPath: dump });
        expect(findPristine(sha, { root, pgVersion: "16" })).toBeUndefined();
        // The source is untouched; the copy shares no inode with it (no hard links).
        expect(fs.readdirSync(path.join(dataDir, "pg_wal")).length).toBe(4);
        expect(fs.statSync(path.join(saved.dataDir, "base", "1", "1259")).ino).not.toBe(fs.statSync(path.join(dataDir, "base", "1", "1259")).ino);
        expect((fs.statSync(root).mode & 0o777).toString(8)).toBe("700");
    });

    it("never uses a copy without its completion marker, or under a temp name, and removes a killed save's temp folder", async () => {
        fs.mkdirSync(path.join(root, sha, "data"), { recursive: true });
        fs.writeFileSync(path.join(root, sha, "data", "PG_VERSION"), "15\n");
        expect(findPristine(sha, { root })).toBeUndefined(); // no pristine.json
        // A temp folder of a process that is gone (pid 2^22 + 1 is above Linux's pid_max).
        const temp = path.join(root, `.tmp-${sha}-4194305-abcd`);
        fs.mkdirSync(path.join(temp, "data"), { recursive: true });
        fs.writeFileSync(path.join(temp, PRISTINE_META), JSON.stringify({ format: 1, sha256: sha }));
        expect(listPristines(root)).toEqual([]);
        expect(await removeAbandonedTemps(root)).toEqual([path.basename(temp)]);
        expect(fs.existsSync(temp)).toBe(false);
        // A marker naming another dump does not count either.
        fs.writeFileSync(path.join(root, sha, PRISTINE_META), JSON.stringify({ format: 1, sha256: "0".repeat(64) }));
        expect(findPristine(sha, { root })).toBeUndefined();
        expect(findPristine("not-a-sha", { root })).toBeUndefined();
    });

    it("replaces an older copy of the same dump in one step, and drops it", async () => {
        const first = await savePristine(dataDir, { sha256: sha, dumpPath: dump, dumpBytes: 10 }, { root });
        fs.writeFileSync(path.join(dataDir, "base", "1", "1259"), "new bytes");
        const second = await savePristine(dataDir, { sha256: sha, dumpPath: dump, dumpBytes: 10 }, { root });
        expect(second.dir).toBe(first.dir);
        expect(fs.readFileSync(path.join(second.dataDir, "base", "1", "1259"), "utf8")).toBe("new bytes");
        expect(fs.readdirSync(root)).toEqual([sha]);
        expect((await pristinesOfDump(dump, root)).pristines.map((p) => p.meta.sha256)).toEqual([sha]);
        expect(await dropPristine(sha, root)).toBe(true);
        expect(await dropPristine(sha, root)).toBe(false);
        expect(fs.readdirSync(root)).toEqual([]);
    });

    it("finds the copies whose dump is gone or changed (harmless, and what --prune drops)", async () => {
        await savePristine(dataDir, { sha256: sha, dumpPath: dump, dumpBytes: 10 }, { root });
        expect(await stalePristines(root)).toEqual([]);
        fs.writeFileSync(dump, "other dump");
        expect((await stalePristines(root)).map((p) => p.meta.sha256)).toEqual([sha]);
        // Found by path although its content changed, for --drop-pristine.
        expect((await pristinesOfDump(dump, root)).pristines.map((p) => p.meta.sha256)).toEqual([sha]);
        fs.rmSync(dump);
        expect((await stalePristines(root)).map((p) => p.meta.sha256)).toEqual([sha]);
    });

    it("refuses to trim the WAL when the checkpoint's file is missing", async () => {
        await expect(copyDataDir(dataDir, path.join(dir, "copy"), { onlyWalFile: "000000010000000000000009" })).rejects.toThrow(/lacks 000000010000000000000009/);
    });

    it("says in one line what the load did", () => {
        expect(describeLoad({ mode: "cloned", sha256: "ab".repeat(32), hashSeconds: 1.7, copySeconds: 1.1, startSeconds: 0.6, pristineBytes: 1.5 * 2 ** 30, seconds: 3.6 }))
            .toBe("cloned from pristine abababababab in 3.6 s (sha256 1.7 s, copy of 1.50 GiB 1.1 s, start 0.6 s; no pg_restore)");
        expect(describeLoad({ mode: "restored", sha256: "ab".repeat(32), hashSeconds: 1.7, restoreSeconds: 84, pristineSeconds: 4.2, pristineBytes: 2 ** 30, seconds: 90 }))
            .toBe("restored in 90.0 s (sha256 1.7 s, pg_restore 84.0 s); pristine abababababab kept for the next drill (1.00 GiB, 4.2 s)");
        expect(describeLoad({ mode: "restored", sha256: "ab".repeat(32), restoreSeconds: 84, pristineError: "No space left on device", seconds: 85 }))
            .toContain("no pristine kept: No space left on device");
    });
});
