/**
 * What a backfill printed about its counts, read best-effort: the counts are
 * the application's business and its format is its own. The product's own
 * facts (NULLs before and after, rows) come from the database, never from here.
 */

/** Per table, what a backfill run reported. */
export interface BackfillCounts {
    [table: string]: Record<string, number>;
}

const PAIRS = /\b([a-z_]+)=(\d+)\b/g;
const pairsOf = (text: string) => Object.fromEntries([...text.matchAll(PAIRS)].map(([, key, value]) => [key, Number(value)]));

/**
 * Reads the forms known:
 * - `<table>: updated=<n> skipped=<n>` (or `would_update=`), one line per table;
 * - `[<table>] updated=<n> skipped=<n>`;
 * - one `summary: <table> updated=<n> skipped=<n>  <table> updated=<n> …` line.
 * Anything else is ignored; an empty result means "not reported".
 */
export function parseBackfillSummary(output: string): BackfillCounts {
    const counts: BackfillCounts = {};
    for (const line of output.split("\n")) {
        const summary = /^\s*summary:\s*(.*)$/i.exec(line);
        if (summary) {
            // `<table> key=n key=n …` groups; flags like dry_run=True are not counts.
            for (const [, table, rest] of summary[1].matchAll(/\b([A-Za-z_][\w.]*)((?:\s+[a-z_]+=\d+\b)+)/g)) counts[table] = pairsOf(rest);
            continue;
        }
        const table = /^\s*(?:\[([A-Za-z_][\w.]*)\]|([A-Za-z_][\w.]*):)\s+(?=[a-z_]+=\d)/.exec(line);
        if (!table) continue;
        const pairs = pairsOf(line);
        if (Object.keys(pairs).length > 0) counts[table[1] ?? table[2]] = pairs;
    }
    return counts;
}
