/**
 * `protea-drill-db start-from-dump`, `load-dump` and `pristine`: the local
 * drill's re-drill from a kept pristine copy (lib/drill/pristineCopy.ts).
 *
 *   start-from-dump  hashes the dump; with a complete pristine of that content
 *                    (same server major version), the cluster starts from a
 *                    copy of it (no initdb) and the drill's password is set
 *                    again; otherwise as `start`. Either way it leaves
 *                    `drill-start.json` in the cluster folder.
 *   load-dump        cloned: nothing to load, it records how the clone went;
 *                    otherwise `restore-dump` (bin/drill-db.ts, unchanged),
 *                    then the role's password cleared, the server stopped
 *                    cleanly, its data directory kept as the pristine, the
 *                    server started again and the password set again. A
 *                    pristine that cannot be kept (no room) is a warning, not a
 *                    failed load. Leaves `drill-load.json` (LoadRecord).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { databaseFromEnvironment } from "../postgres/database";
import { resolveDrillPath } from "../config/drillConfig";
import { describeLoad, LOAD_RECORD, LoadRecord } from "./loadRecord";
import {
    dropPristine, findPristine, listPristines, pristinesOfDump, removeAbandonedTemps, savePristine, sha256File, shaPrefix, stalePristines,
} from "./pristineCopy";
import { controlData } from "../postgres/cluster/clusterFiles";
import { ClusterLocation } from "../postgres/cluster/clusterLayout";
import { setRolePasswordInDir, startClusterFromCopy, startServerInDir, stopServerInDir } from "../postgres/cluster/detachedCluster";
import { serverMajorVersion } from "../postgres/cluster/serverBinaries";

type Values = Record<string, string | boolean | undefined>;

/** What start-from-dump leaves in the cluster folder for load-dump. */
export const START_RECORD = "drill-start.json";

/** The start's part of the load record (the clone's timings and pristine), and whether it cloned. */
type StartRecord = Pick<LoadRecord, "copySeconds" | "startSeconds" | "pristineDir" | "pristineBytes" | "pristineCreatedAt" | "seconds"> & {
    sha256: string;
    hashSeconds: number;
    cloned: boolean;
};

function option(values: Values, name: string): string {
    const value = values[name];
    if (typeof value !== "string" || !value) throw new Error(`missing --${name}`);
    return value;
}

const seconds = (since: number) => (Date.now() - since) / 1000;
const gib = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);

function readJson<T>(file: string): T | undefined {
    try {
        return JSON.parse(fs.readFileSync(file, "utf8")) as T;
    } catch {
        return undefined;
    }
}

export interface StartDeps {
    location: (values: Values) => ClusterLocation;
    start: (values: Values) => Promise<unknown>;
    say: (line: string) => void;
}

export async function startFromDump(values: Values, deps: StartDeps): Promise<unknown> {
    const started = Date.now();
    const dump = resolveDrillPath(option(values, "dump"));
    // A missing dump: start as usual; load-dump then fails naming drill:sourceDump.
    if (!fs.existsSync(dump)) return deps.start(values);
    const sha256 = await sha256File(dump);
    const hashSeconds = seconds(started);
    const pristine = findPristine(sha256, { pgVersion: serverMajorVersion() });
    const where = deps.location(values);
    const initdb = async (why: string) => {
        deps.say(`sha256 of ${dump}: ${shaPrefix(sha256)}… (${hashSeconds.toFixed(1)} s); ${why}: initdb, then the load step restores it and keeps a pristine copy`);
        const result = (await deps.start(values)) as Record<string, unknown>;
        const record: StartRecord = { sha256, hashSeconds, cloned: false, seconds: seconds(started) };
        fs.writeFileSync(path.join(where.dir, START_RECORD), `${JSON.stringify(record)}\n`, { mode: 0o600 });
        return { ...result, sha256, cloned: false };
    };
    if (!pristine) return initdb("no pristine copy of it yet");
    const password = process.env.DRILL_DB_PASSWORD;
    if (!password) throw new Error("DRILL_DB_PASSWORD is not set (the drill stack passes drill:password in it)");
    if (where.relocated) deps.say(`OS user postgres cannot reach ${path.dirname(where.preferred)}: the cluster goes to ${where.dir}`);
    deps.say(`sha256 of ${dump}: ${shaPrefix(sha256)}… (${hashSeconds.toFixed(1)} s); cloning its pristine copy (${gib(pristine.meta.dataBytes)}, restored ${pristine.meta.createdAt}) instead of initdb and pg_restore`);
    let cluster: Awaited<ReturnType<typeof startClusterFromCopy>>;
    try {
        cluster = await startClusterFromCopy({ stateDir: where.dir, fromDataDir: pristine.dataDir, port: Number(option(values, "port")), password, durabilityOff: true, log: deps.say });
    } catch (err) {
        // startClusterFromCopy removed what it made; the pristine stays as it was (--fresh replaces it).
        return initdb(`its pristine copy did not start (${(err as Error).message.split("\n")[0]})`);
    }
    const record: StartRecord = {
        sha256,
        hashSeconds,
        cloned: true,
        copySeconds: cluster.copySeconds,
        startSeconds: cluster.startSeconds,
        pristineDir: pristine.dir,
        pristineBytes: pristine.meta.dataBytes,
        pristineCreatedAt: pristine.meta.createdAt,
        seconds: seconds(started),
    };
    fs.writeFileSync(path.join(where.dir, START_RECORD), `${JSON.stringify(record)}\n`, { mode: 0o600 });
    return { port: cluster.port, relocated: where.relocated, cloned: true, sha256, seconds: record.seconds };
}

export interface LoadDeps {
    location: (values: Values) => ClusterLocation;
    restoreDump: (values: Values) => Promise<unknown>;
    say: (line: string) => void;
}

export async function loadDumpWithPristine(values: Values, deps: LoadDeps): Promise<unknown> {
    const started = Date.now();
    const where = deps.location(values);
    const dump = resolveDrillPath(option(values, "dump"));
    const startRecord = readJson<StartRecord>(path.join(where.dir, START_RECORD));
    const recordFile = path.join(where.dir, LOAD_RECORD);
    if (startRecord?.cloned) {
        const record: LoadRecord = {
            mode: "cloned",
            sha256: startRecord.sha256,
            hashSeconds: startRecord.hashSeconds,
            copySeconds: startRecord.copySeconds,
            startSeconds: startRecord.startSeconds,
            pristineDir: startRecord.pristineDir,
            pristineBytes: startRecord.pristineBytes,
            pristineCreatedAt: startRecord.pristineCreatedAt,
            // The clone's work happened when the cluster started; this step only records it.
            seconds: startRecord.seconds + seconds(started),
        };
        fs.writeFileSync(recordFile, `${JSON.stringify(record)}\n`, { mode: 0o600 });
        deps.say(describeLoad(record));
        return { source: "pristine", ...record };
    }

    const restored = (await deps.restoreDump(values)) as { seconds?: number; dumpBytes?: number } | undefined;
    const restoreSeconds = restored?.seconds ?? seconds(started);
    let sha256 = startRecord?.sha256;
    let hashSeconds = startRecord?.hashSeconds;
    if (!sha256) {
        const hashStarted = Date.now();
        sha256 = await sha256File(dump);
        hashSeconds = seconds(hashStarted);
    }

    const keepStarted = Date.now();
    const database = databaseFromEnvironment();
    let pristineError: string | undefined;
    let pristineBytes: number | undefined;
    let pristineDir: string | undefined;
    let cleared = false;
    let stopped = false;
    try {
        // The pristine holds no credential: the role's password is cleared in it, and set again below.
        await setRolePasswordInDir(where.dir, database.user, undefined);
        cleared = true;
        await stopServerInDir(where.dir, { log: deps.say });
        stopped = true;
        deps.say(`keeping a pristine copy of the restored data directory for the next drill from this dump (${shaPrefix(sha256)}…)`);
        const control = await controlData(path.join(where.dir, "data"));
        // Only a cleanly stopped cluster is consistent on disk (durability is off while it runs).
        if (control.state !== "shut down") throw new Error(`the clone's cluster state is "${control.state}", not "shut down"`);
        const pristine = await savePristine(path.join(where.dir, "data"), { sha256, dumpPath: dump, dumpBytes: fs.statSync(dump).size }, { onlyWalFile: control.redoWalFile });
        pristineBytes = pristine.meta.dataBytes;
        pristineDir = pristine.dir;
    } catch (err) {
        pristineError = (err as Error).message.split("\n")[0];
        deps.say(`no pristine copy kept (the next drill restores again): ${pristineError}`);
    }
    // Whatever happened above, the clone runs again with the drill's password; failing here fails the load.
    if (stopped) await startServerInDir(where.dir, { log: deps.say });
    if (cleared) await setRolePasswordInDir(where.dir, database.user, database.password);
    const record: LoadRecord = {
        mode: "restored",
        sha256,
        hashSeconds,
        restoreSeconds,
        pristineSeconds: seconds(keepStarted),
        pristineError,
        pristineDir,
        pristineBytes,
        seconds: (hashSeconds ?? 0) + seconds(started),
    };
    fs.writeFileSync(recordFile, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    deps.say(describeLoad(record));
    return { source: "dump", dumpBytes: restored?.dumpBytes, ...record };
}

/** `pristine [--list] [--drop --dump FILE] [--prune]`. */
export async function pristineCommand(values: Values, say: (line: string) => void): Promise<unknown> {
    const abandoned = await removeAbandonedTemps();
    if (abandoned.length > 0) say(`removed ${abandoned.length} unfinished pristine cop${abandoned.length === 1 ? "y" : "ies"} of killed drills`);
    if (values.drop === true) {
        const dump = resolveDrillPath(option(values, "dump"));
        const { pristines } = await pristinesOfDump(dump);
        for (const p of pristines) {
            await dropPristine(p.meta.sha256);
            say(`dropped pristine ${shaPrefix(p.meta.sha256)} (${gib(p.meta.dataBytes)}, of ${p.meta.dumpPath})`);
        }
        return { dropped: pristines.map((p) => p.meta.sha256) };
    }
    if (values.prune === true) {
        const stale = await stalePristines();
        for (const p of stale) {
            await dropPristine(p.meta.sha256);
            say(`dropped pristine ${shaPrefix(p.meta.sha256)} (${gib(p.meta.dataBytes)}): ${p.meta.dumpPath} is gone or changed`);
        }
        return { dropped: stale.map((p) => p.meta.sha256) };
    }
    return {
        pristines: listPristines().map((p) => ({
            sha256: p.meta.sha256,
            dump: p.meta.dumpPath,
            dumpExists: fs.existsSync(p.meta.dumpPath),
            dataBytes: p.meta.dataBytes,
            pgVersion: p.meta.pgVersion,
            createdAt: p.meta.createdAt,
            dir: p.dir,
        })),
    };
}
