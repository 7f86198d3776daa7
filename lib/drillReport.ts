/**
 * The drill's timing report: every step's wall time next to the runbook's
 * measured drill times, the row counts, the dump size, and PASS/FAIL for each
 * check. Markdown for the change ticket, JSON for machines.
 */

export interface StepTiming {
    step: string;
    /** Milliseconds measured in this drill; undefined when the step did not run. */
    millis?: number;
    /** The runbook's figure for the same step, e.g. "10m35s". */
    runbook?: string;
}

export interface Check {
    name: string;
    pass: boolean;
    detail: string;
}

export interface DrillReport {
    startedAt: string;
    stack: string;
    engine: string;
    source: string;
    rows: Record<string, number>;
    sourceDumpBytes?: number;
    backupBytes?: number;
    /** pg_database_size of the clone after the rollout. */
    databaseBytes?: number;
    steps: StepTiming[];
    engineMillis: Record<string, number>;
    checks: Check[];
    totalMillis: number;
}

/** The runbook's "Measured wall times (drill clone)" table. */
export const RUNBOOK_TIMES: Record<string, string> = {
    restore: "10m35s",
    upgrade: "2.85s",
    backfillDryRun: "3.66s",
    backfillApply: "1.53s",
    idempotentRerun: "1.55s",
    downgrade: "0.61s",
};

export function formatMillis(millis: number | undefined): string {
    if (millis === undefined) return "—";
    if (millis < 60_000) return `${(millis / 1000).toFixed(2)}s`;
    const minutes = Math.floor(millis / 60_000);
    return `${minutes}m${Math.round((millis % 60_000) / 1000)}s`;
}

function formatBytes(bytes: number | undefined): string {
    if (bytes === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
        value /= 1024;
        unit++;
    }
    return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function renderMarkdown(report: DrillReport): string {
    const passed = report.checks.filter((c) => c.pass).length;
    const lines = [
        `# schema_sha_v2 (T1.6) drill — ${report.startedAt}`,
        "",
        `Stack \`${report.stack}\`, engine \`${report.engine}\`, source: ${report.source}.`,
        `Rows: ${Object.entries(report.rows).map(([table, n]) => `${table} ${n}`).join(", ") || "—"}. ` +
            `Database: ${formatBytes(report.databaseBytes)}. Source dump: ${formatBytes(report.sourceDumpBytes)}. Pre-flight backup: ${formatBytes(report.backupBytes)}.`,
        "",
        "| step | this drill | runbook (drill clone) |",
        "| --- | --- | --- |",
        ...report.steps.map((s) => `| ${s.step} | ${formatMillis(s.millis)} | ${s.runbook ?? "—"} |`),
        "",
        "| Pulumi operation | wall time |",
        "| --- | --- |",
        ...Object.entries(report.engineMillis).map(([op, ms]) => `| ${op} | ${formatMillis(ms)} |`),
        "",
        `Checks: ${passed} of ${report.checks.length} PASS.`,
        "",
        "| check | result | detail |",
        "| --- | --- | --- |",
        ...report.checks.map((c) => `| ${c.name} | ${c.pass ? "PASS" : "FAIL"} | ${c.detail.replace(/\|/g, "\\|").replace(/\n/g, " ")} |`),
        "",
        `Total: ${formatMillis(report.totalMillis)}. Re-measure on production hardware before quoting these in a change ticket.`,
        "",
    ];
    return lines.join("\n");
}
