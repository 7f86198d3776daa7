/** The backfill script's summary lines, as the Backfill component and the dry-run probe read them. */

/** Per table, what a backfill run reported. */
export interface BackfillCounts {
    [table: string]: Record<string, number>;
}

/** Reads `<table>: updated=<n> skipped=<n>` (or `would_update=<n>`) lines. */
export function parseBackfillSummary(output: string): BackfillCounts {
    const counts: BackfillCounts = {};
    for (const line of output.split("\n")) {
        const table = /^\s*([A-Za-z_][\w.]*):/.exec(line)?.[1];
        const pairs = [...line.matchAll(/\b([a-z_]+)=(\d+)\b/g)];
        if (!table || pairs.length === 0) continue;
        counts[table] = Object.fromEntries(pairs.map(([, key, value]) => [key, Number(value)]));
    }
    return counts;
}
