/**
 * The drill's timing report: every step's wall time next to the runbook's
 * measured drill times, the row counts, the dump size, and PASS/FAIL for each
 * check. Markdown for the change ticket, JSON for machines. Also the verdicts
 * of the checks that need no engine (teardown, data after the restore) and
 * the progress lines, as functions the unit tests reach.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import type { Client } from "pg";
import { run } from "../process/processes";
import type { LoadRecord } from "./loadRecord";
import type { Rehearsal } from "../runbook/rehearsal";

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

/** A table's rows and a checksum of them, as the clone held them before the rollout. */
export interface TableChecksum {
    table: string;
    rows: number;
    checksum: string;
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
    /**
     * Local engine, from a dump: how the clone was loaded: `restored`
     * (pg_restore, and a pristine copy kept for the next drill) or `cloned`
     * (a copy of an earlier drill's pristine copy of the same dump), with its
     * times (lib/drill/loadRecord.ts LoadRecord) and a one-line summary.
     */
    load?: LoadRecord & { summary: string };
    steps: StepTiming[];
    engineMillis: Record<string, number>;
    checks: Check[];
    /** What production is held to when rollout:rehearsal names this report (lib/runbook/rehearsal.ts). */
    rehearsal?: Rehearsal;
    /** Every table of schema public before the rollout, when the restore was rehearsed. */
    tablesBeforeRollout?: TableChecksum[];
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
        ...(report.load ? [`Load: ${report.load.summary}.`] : []),
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
        ...(report.tablesBeforeRollout ? [
            "Data before the rollout, which the restore must bring back:",
            "",
            "| table | rows | checksum |",
            "| --- | --- | --- |",
            ...report.tablesBeforeRollout.map((t) => `| ${t.table} | ${t.rows} | ${t.checksum} |`),
            "",
        ] : []),
        `Total: ${formatMillis(report.totalMillis)}. Re-measure on production hardware before quoting these in a change ticket.`,
        "",
    ];
    return lines.join("\n");
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/**
 * Each table of schema public with its row count and a checksum of its rows.
 * The checksum sums each row's md5 (both halves, as 64-bit integers): it needs
 * no sort and no string of the whole table (string_agg stops at 1 GB, which a
 * large sample passes), and the same rows in another physical order match.
 */
export async function tableChecksums(client: Client): Promise<TableChecksum[]> {
    const tables = await client.query(
        `SELECT c.relname AS name, quote_ident(c.relname) AS quoted FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
    );
    const checksums: TableChecksum[] = [];
    for (const { name, quoted } of tables.rows) {
        const { rows, checksum } = (await client.query(
            `SELECT count(*) AS rows,
                    md5(coalesce(sum(('x' || left(h, 16))::bit(64)::bigint), 0) || '/' || coalesce(sum(('x' || right(h, 16))::bit(64)::bigint), 0)) AS checksum
               FROM (SELECT md5(t::text) AS h FROM public.${quoted} t) AS r`,
        )).rows[0];
        checksums.push({ table: name, rows: Number(rows), checksum });
    }
    return checksums;
}

/** Writes the clone's tables as loaded (DrillDatabase's tables step, before the rollout starts). */
export function writeTablesSnapshot(file: string, tables: TableChecksum[]): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify({ tables }, null, 2)}\n`);
}

/** The clone's tables as loaded; undefined when no snapshot was written. */
export function readTablesSnapshot(file: string): TableChecksum[] | undefined {
    if (!fs.existsSync(file)) return undefined;
    return (JSON.parse(fs.readFileSync(file, "utf8")) as { tables: TableChecksum[] }).tables;
}

/** After the restore, every table must hold the rows it held before the rollout: same count, same checksum. */
export function compareTableData(when: string, before: TableChecksum[] | undefined, after: TableChecksum[]): Check {
    const name = `${when}: every table's rows as before the rollout`;
    if (!before) return { name, pass: false, detail: "no snapshot of the clone's tables before the rollout: its tables step did not run" };
    const afterByTable = new Map(after.map((t) => [t.table, t]));
    const problems: string[] = [];
    for (const b of before) {
        const a = afterByTable.get(b.table);
        if (!a) problems.push(`${b.table} is missing (${b.rows} rows before)`);
        else if (a.rows !== b.rows) problems.push(`${b.table} has ${a.rows} rows, ${b.rows} before`);
        else if (a.checksum !== b.checksum) problems.push(`${b.table} has other rows (checksum ${a.checksum.slice(0, 12)}…, ${b.checksum.slice(0, 12)}… before; ${b.rows} rows)`);
    }
    for (const a of after) if (!before.some((b) => b.table === a.table)) problems.push(`${a.table} was not there before (${a.rows} rows)`);
    if (problems.length > 0) return { name, pass: false, detail: problems.join("; ") };
    const rows = before.reduce((sum, t) => sum + t.rows, 0);
    return { name, pass: true, detail: `${before.length} tables, ${rows} rows, each table's count and checksum as before: ${before.map((t) => `${t.table} ${t.rows}`).join(", ")}` };
}

/** The local clone after teardown: its folders gone, its postmaster stopped, its port free. */
export function localCloneRemoved(clone: { dir: string; left: string[]; pid?: number; running: boolean; port: number; listening: boolean }): Check {
    return {
        name: "clone removed",
        pass: clone.left.length === 0 && !clone.running && !clone.listening,
        detail: `${clone.dir} ${clone.left.length ? `still exists (${clone.left.join(", ")})` : "removed"}; postmaster ${clone.pid ?? "?"} ${clone.running ? "still running" : "stopped"}; ${listenDetail(clone.port, clone.listening)}`,
    };
}

/** The docker clone after teardown: no container of its name (running or not), its port free. */
export function dockerCloneRemoved(clone: { containerName: string; left: string[]; port: number; listening: boolean }): Check {
    return {
        name: "clone removed",
        pass: clone.left.length === 0 && !clone.listening,
        detail: `${clone.left.length ? `container ${clone.containerName} still exists (${clone.left.join("; ")})` : `no container ${clone.containerName}`}; ${listenDetail(clone.port, clone.listening)}`,
    };
}

const listenDetail = (port: number, listening: boolean) => `${listening ? "something still listens on" : "nothing listens on"} 127.0.0.1:${port}`;

/**
 * The containers named exactly `name`, running or stopped (`docker ps -a`),
 * as "<id> <status>" lines; throws when docker does not answer.
 */
export async function containersNamed(name: string, runner: typeof run = run): Promise<string[]> {
    // The filter is a regular expression over "/<name>": anchored, dots literal.
    const exactly = `^/${name.replace(/[.]/g, "\\.")}$`;
    const result = await runner("docker", ["ps", "-a", "--filter", `name=${exactly}`, "--format", "{{.ID}} {{.Status}}"]);
    if (result.code !== 0) throw new Error(`docker ps failed (exit ${result.code}): ${result.stderr.trim()}`);
    return result.stdout.split("\n").map((line) => line.trim()).filter(Boolean);
}

// ---------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------

/** The docker engine's resources, named in progress as they start too: a pull and a wait until healthy take a while. */
const DOCKER_STEPS: Record<string, string> = {
    "docker:index/remoteImage:RemoteImage": "docker image",
    "docker:index/container:Container": "docker container",
};

/**
 * The progress line for an engine event, if any: a command or docker resource
 * that finished (`create drill-load`), and a docker resource that starts
 * (`create drill-postgres: docker container protea-drill-postgres …`).
 */
export function progressLine(event: EngineEvent): string | undefined {
    const started = event.resourcePreEvent?.metadata;
    if (started && DOCKER_STEPS[started.type] && started.op !== "same") {
        const dockerName = (started.new ?? started.old)?.inputs?.name;
        return `${started.op} ${started.urn.split("::").pop()}: ${DOCKER_STEPS[started.type]}${typeof dockerName === "string" ? ` ${dockerName}` : ""} …`;
    }
    const done = event.resOutputsEvent?.metadata;
    if (done && (done.type === "command:local:Command" || DOCKER_STEPS[done.type])) return `${done.op} ${done.urn.split("::").pop()}`;
    return undefined;
}
