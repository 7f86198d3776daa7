/**
 * The dry run's report: what the probes found (lib/preview/probes.ts runs them), as
 * the JSON line the probe prints, and as the lines `pulumi preview` logs. Pure
 * and light: the Pulumi program loads this module, not the probes.
 */
import * as path from "node:path";
import type { ClientToolsVerdict } from "../postgres/clientTools";
import { describeBlocker, LockBlocker } from "../runbook/lockAwareApply";
import type { LockSafetyReport } from "./lockSafety";
import type { ParityCutover } from "../config/config";
import { describeParityDrift, ParityDrift } from "../runbook/parityDrift";
import { RehearsalComparison, seconds, STEP_TITLES } from "../runbook/rehearsal";
import { formatBytes } from "../process/format";
import { tail } from "../process/processes";
import { secretForms } from "../process/scrub";

/** One probe's outcome: its value, or why there is none. */
export type Probe<T> = ({ ok: true; value: T } | { ok: false; error: string }) & { millis: number };

export interface DatabaseFacts {
    database: string;
    host: string;
    port: number;
    serverVersion: string;
    serverVersionNum: number;
    /** pg_database_size of the database. */
    sizeBytes: number;
}

export interface BackupSpace {
    backupDir: string;
    /** backupDir, or its nearest existing parent when it does not exist yet. */
    checkedDir: string;
    freeBytes: number;
    /** The dump's expected size: the database's size (a `-F c` dump is usually smaller). Unknown when the database did not answer. */
    expectedDumpBytes?: number;
    /** freeBytes >= expectedDumpBytes; unknown with the expectation. */
    enough?: boolean;
}

export interface GateVerdict {
    /** The preflight gate would pass. */
    ok: boolean;
    alreadyAtTarget: boolean;
    message: string;
}

export interface PendingSql {
    /** The revision range, `<expectedHead>:<targetRevision>`. */
    range: string;
    /** What `alembic upgrade <range> --sql` prints. */
    sql: string;
}

export interface BackfillTablePreview {
    wouldUpdate: number;
    skipped: number;
}

export interface BackfillPreview {
    /**
     * `backfill --dry-run` when the new columns exist; otherwise `row counts`:
     * the columns are added empty, so every row would be written.
     */
    source: "backfill --dry-run" | "row counts";
    tables: Record<string, BackfillTablePreview>;
}

export interface ProbeReport {
    database: Probe<DatabaseFacts>;
    backupSpace: Probe<BackupSpace>;
    /** pg_dump/pg_restore where they run (rollout:pgAccess) against the server; absent when not asked. */
    clientTools?: Probe<ClientToolsVerdict>;
    alembicCurrent: Probe<string[]>;
    alembicHeads: Probe<string[]>;
    preflightGate: Probe<GateVerdict>;
    pendingSql: Probe<PendingSql>;
    backfill: Probe<BackfillPreview>;
    lockSafety: Probe<LockSafetyReport>;
    /** With rollout:parityCutover: rows before/after it per table and how many differ, or why not counted yet. */
    parityDrift?: Probe<ParityDrift[] | string>;
    /** With rollout:rehearsal: production against the drill's report, and each step's projected time and budget. */
    rehearsal?: Probe<RehearsalComparison & { source: string; at: string }>;
    /** Sessions in the migration's way (lib/runbook/lockAwareApply.ts). */
    blockers: Probe<LockBlocker[]>;
    /** Wall time of all probes. */
    millis: number;
}

export const PROBE_NAMES = ["database", "backupSpace", "alembicCurrent", "alembicHeads", "preflightGate", "pendingSql", "backfill", "lockSafety", "blockers"] as const;
export type ProbeName = (typeof PROBE_NAMES)[number];

const failed = <T>(error: string): Probe<T> => ({ ok: false, error, millis: 0 });

/** The URL and its password in every form they may be printed in (lib/process/scrub.ts). */
export function secretsOf(url: string | undefined): string[] {
    if (!url) return [];
    const secrets = new Set([url]);
    try {
        const password = new URL(url).password;
        if (password) for (const form of secretForms(decodeURIComponent(password))) secrets.add(form);
    } catch {
        // Not a URL: the whole value is the secret.
    }
    // Shorter strings would match too much ordinary text; the provider draws the same line.
    return [...secrets].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
}

/** Replaces every secret in every string of `value` with "[secret]". */
export function redactReport<T>(value: T, secrets: string[]): T {
    if (secrets.length === 0) return value;
    const scrub = (v: unknown): unknown => {
        if (typeof v === "string") return secrets.reduce((text, secret) => text.split(secret).join("[secret]"), v);
        if (Array.isArray(v)) return v.map(scrub);
        if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, inner]) => [k, scrub(inner)]));
        return v;
    };
    return scrub(value) as T;
}

/**
 * Reads the report from the probe command's output (the last JSON line on
 * stdout). Never throws: without a readable report every probe is reported
 * failed, with the last lines of stderr as the reason; a probe missing from
 * the report (an older probe) is reported failed by name.
 */
export function parseProbeReport(stdout: string, stderr = ""): ProbeReport {
    let parsed: Record<string, unknown> | undefined;
    for (const line of stdout.trim().split("\n").reverse()) {
        try {
            const candidate = JSON.parse(line);
            if (candidate && typeof candidate === "object" && !Array.isArray(candidate)) {
                parsed = candidate;
                break;
            }
        } catch {
            // Not the report line.
        }
    }
    const why = parsed ? "" : `the probe printed no report${stderr.trim() ? `:\n${tail(stderr, 8)}` : ""}`;
    const report = { millis: typeof parsed?.millis === "number" ? parsed.millis : 0 } as ProbeReport;
    for (const name of PROBE_NAMES) {
        const entry = parsed?.[name] as Probe<unknown> | undefined;
        const valid = entry && typeof entry === "object" && (entry.ok === true ? "value" in entry : entry.ok === false && typeof entry.error === "string");
        (report as unknown as Record<string, Probe<unknown>>)[name] = valid ? entry : failed(why || `the probe did not report ${name}`);
    }
    // Probed only when configured: the client tools' placement, the parity cut-over.
    const wellFormed = (p: Probe<unknown> | undefined) => p !== undefined && typeof p === "object" && (p.ok ? "value" in p : typeof p.error === "string");
    const tools = parsed?.clientTools as Probe<ClientToolsVerdict> | undefined;
    if (wellFormed(tools) && (!tools!.ok || typeof tools!.value?.message === "string")) report.clientTools = tools;
    const drift = parsed?.parityDrift as Probe<ParityDrift[] | string> | undefined;
    if (wellFormed(drift)) report.parityDrift = drift;
    const rehearsal = parsed?.rehearsal as ProbeReport["rehearsal"];
    if (wellFormed(rehearsal) && (!rehearsal!.ok || Array.isArray(rehearsal!.value?.warnings))) report.rehearsal = rehearsal;
    return report;
}

export interface ReportLine {
    level: "info" | "warn";
    text: string;
}

/** A long error (a Python traceback) as its first line and its last three, which say what failed and why. */
export function condense(error: string): string {
    const lines = error.trimEnd().split("\n");
    return lines.length <= 4 ? error.trimEnd() : [lines[0], "  …", ...lines.slice(-3)].join("\n");
}

const revisionsText = (revs: string[]) => (revs.length === 0 ? "(none)" : revs.join(", "));

/** This stack's migration is in the database (alembic at the target, the state holds it): its SQL will not run again. */
export function appliedByThisStack(report: ProbeReport, stackHoldsMigration: boolean | undefined): boolean {
    const gate = report.preflightGate;
    return gate.ok && !gate.value.ok && gate.value.alreadyAtTarget && stackHoldsMigration === true;
}

/**
 * The report as lines for the preview's log, in the runbook's order: the
 * database, the backup's room, the revisions and the gate's verdict, the
 * pending SQL and its lock-safety reading, the backfill. Failed probes and
 * anything that would stop or hurt the rollout are warnings.
 */
export function formatProbeReport(report: ProbeReport, context: { stackHoldsMigration?: boolean; parityCutover?: ParityCutover } = {}): ReportLine[] {
    const lines: ReportLine[] = [];
    const info = (text: string) => lines.push({ level: "info", text: `dry run: ${text}` });
    const warn = (text: string) => lines.push({ level: "warn", text: `dry run: ${text}` });
    const failure = (what: string, p: { ok: false; error: string }) => warn(`${what}: could not be probed: ${condense(p.error)}`);

    const db = report.database;
    if (db.ok) info(`database ${db.value.database} at ${db.value.host}:${db.value.port} answers: PostgreSQL ${db.value.serverVersion}, ${formatBytes(db.value.sizeBytes)}`);
    else failure("database", db);

    const space = report.backupSpace;
    if (space.ok) {
        const v = space.value;
        const where = v.checkedDir === path.resolve(v.backupDir) ? v.backupDir : `${v.backupDir} (not created yet; checked ${v.checkedDir})`;
        if (v.expectedDumpBytes === undefined) info(`backup: ${formatBytes(v.freeBytes)} free in ${where}; dump size unknown`);
        else if (v.enough) info(`backup: ${formatBytes(v.freeBytes)} free in ${where}; the dump needs up to ${formatBytes(v.expectedDumpBytes)} (the database's size)`);
        else warn(`backup: only ${formatBytes(v.freeBytes)} free in ${where}, but the dump may need up to ${formatBytes(v.expectedDumpBytes)} (the database's size): free space or change rollout:backupDir`);
    } else failure("backup space", space);

    const tools = report.clientTools;
    if (tools?.ok) (tools.value.ok ? info : warn)(`${tools.value.ok ? "client tools" : "the update would stop at the preflight gate"}: ${tools.value.message}`);
    else if (tools) failure("client tools", tools);

    const current = report.alembicCurrent;
    const heads = report.alembicHeads;
    if (current.ok) info(`alembic current: ${revisionsText(current.value)}`);
    else failure("alembic current", current);
    if (heads.ok) info(`alembic heads: ${revisionsText(heads.value)}`);
    else failure("alembic heads", heads);
    const gate = report.preflightGate;
    const applied = appliedByThisStack(report, context.stackHoldsMigration);
    const toolsStop = tools?.ok === true && !tools.value.ok;
    if (gate.ok) {
        if (gate.value.ok && toolsStop) info(`alembic's revisions are as the gate wants (${gate.value.message}), but the gate would stop on the client tools above`);
        else if (gate.value.ok) info(`the preflight gate would pass: ${gate.value.message}`);
        else if (applied) info("the migration is applied, by this stack: alembic current is the target revision; no DDL is pending");
        else warn(`the update would stop here: ${gate.value.message}`);
    } else failure("preflight gate", gate);

    // Once this stack's migration is applied, its SQL will not run again: neither it nor its lock reading asks anything of the operator.
    const sql = report.pendingSql;
    if (applied) {
        // Nothing pending.
    } else if (sql.ok) info(`pending migration SQL (alembic upgrade ${sql.value.range} --sql):\n${sql.value.sql}`);
    else failure("pending migration SQL", sql);

    const locks = report.lockSafety;
    if (applied) {
        // Nothing to read.
    } else if (locks.ok) {
        const warnings = locks.value.findings.filter((f) => f.severity === "warning");
        info(`lock safety: ${locks.value.statements} statements read with PostgreSQL ${Math.floor(locks.value.parserVersion / 10000)}'s parser; ${warnings.length} make readers or writers wait`);
        for (const f of locks.value.findings) (f.severity === "warning" ? warn : info)(`lock safety: ${f.message}`);
    } else failure("lock safety", locks);

    const drift = report.parityDrift;
    const cutover = context.parityCutover;
    if (drift?.ok && typeof drift.value === "string") info(`parity after the cut-over: ${drift.value}`);
    else if (drift?.ok && cutover) for (const d of drift.value as ParityDrift[]) (d.after.differ > 0 ? warn : info)(`parity ${d.after.differ > 0 ? "DRIFT: the verification would fail: " : ""}${describeParityDrift(d, cutover)}`);
    else if (drift && !drift.ok) failure("parity after the cut-over", drift);

    const rehearsal = report.rehearsal;
    if (rehearsal?.ok) {
        const r = rehearsal.value;
        info(`rehearsal: ${r.source}, ${r.at}`);
        for (const w of r.warnings) warn(`rehearsal: ${w}`);
        for (const p of r.projections) info(`rehearsal: ${STEP_TITLES[p.step]}: ${seconds(p.rehearsedMs)} rehearsed, about ${seconds(p.projectedMs)} here; budget ${seconds(p.budgetMs)}`);
    } else if (rehearsal) failure("rehearsal", rehearsal);

    const blockers = report.blockers;
    if (blockers.ok && blockers.value.length === 0) info("no session holds or waits for a lock on the migration's tables, runs pg_dump, or sits in a long or idle transaction");
    else if (blockers.ok) for (const b of blockers.value) warn(`in the migration's way (${b.why}): ${describeBlocker(b)}`);
    else failure("sessions in the migration's way", blockers);

    const backfill = report.backfill;
    if (backfill.ok) {
        const tables = Object.entries(backfill.value.tables).map(([table, t]) => `${table} ${t.wouldUpdate} rows (${t.skipped} skipped)`);
        const source = backfill.value.source === "row counts" ? "the new columns do not exist yet, so every row" : "its --dry-run succeeded; NULL counts from the database";
        info(`backfill would write: ${tables.join(", ")} (${source})`);
    } else failure("backfill", backfill);
    return lines;
}
