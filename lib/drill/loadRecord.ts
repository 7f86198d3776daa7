/** What a drill's load step did (a restore, or a clone of a pristine copy), the file it is kept in, and its line in the report. */
import { shaPrefix } from "./pristineCopy";

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
