/**
 * Rehearsal budgets: the drill's report (rollout:rehearsal) is what
 * production is held to. The preview compares production with the rehearsal
 * (revisions, the pending SQL's checksum, size, rows per table) and projects
 * each step's time from it; `up` gives each step a budget of a multiple of
 * its rehearsed time, scaled by size, with a floor; after the rollout a
 * report puts both side by side for the change ticket. Pure but for reading
 * the file.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import type { BudgetPolicy } from "../config/config";

/** The steps with a budget, in the runbook's order. */
export const BUDGETED_STEPS = ["backup", "upgrade", "backfillDryRun", "backfillApply"] as const;
export type BudgetedStep = (typeof BUDGETED_STEPS)[number];

export const STEP_TITLES: Record<BudgetedStep, string> = {
    backup: "pre-flight pg_dump -F c, verified",
    upgrade: "alembic upgrade",
    backfillDryRun: "backfill --dry-run",
    backfillApply: "backfill apply",
};

/** What a drill records for production to be compared with (the `rehearsal` object of its JSON report). */
export interface Rehearsal {
    /** When and from what the drill ran. */
    at: string;
    source: string;
    databaseBytes: number;
    rows: Record<string, number>;
    expectedHead: string;
    targetRevision: string;
    /** SHA-256 of the pending SQL (`alembic upgrade <range> --sql`), when the drill's dry run read it. */
    pendingSqlSha256?: string;
    stepMillis: Partial<Record<BudgetedStep, number>>;
}

/** rollout:rehearsal, read and checked; errors name the key and the file. */
export function readRehearsal(file: string): Rehearsal {
    let parsed: unknown;
    try {
        parsed = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (error) {
        throw new Error(`rollout:rehearsal ${file} cannot be read as a drill report (${(error as Error).message}): point it at a drill-reports/drill-report-<time>.json`);
    }
    const r = (parsed as { rehearsal?: Rehearsal }).rehearsal;
    const valid =
        r && typeof r.databaseBytes === "number" && typeof r.expectedHead === "string" && typeof r.targetRevision === "string" &&
        r.rows && typeof r.rows === "object" && r.stepMillis && typeof r.stepMillis === "object";
    if (!valid) throw new Error(`rollout:rehearsal ${file} has no rehearsal facts (an older drill's report?): run \`npm run drill\` again and point rollout:rehearsal at its JSON report`);
    return r;
}

/** The pending SQL's identity, the same in the drill and in production's preview. */
export const pendingSqlChecksum = (sql: string) => createHash("sha256").update(sql.trim()).digest("hex");

export interface ProductionFacts {
    databaseBytes: number;
    rows: Record<string, number>;
    expectedHead: string;
    targetRevision: string;
    pendingSqlSha256?: string;
}

/** Production's size over the rehearsal's; the times scale with it. */
export const sizeScale = (r: Rehearsal, databaseBytes: number) => (r.databaseBytes > 0 ? databaseBytes / r.databaseBytes : 1);

/** A step's budget: multiple × rehearsed time × size scale, at least the floor; undefined when the rehearsal did not time it. */
export function stepBudget(r: Rehearsal, step: BudgetedStep, databaseBytes: number, policy: BudgetPolicy): { ms: number; why: string } | undefined {
    const rehearsed = r.stepMillis[step];
    if (rehearsed === undefined) return undefined;
    const scale = sizeScale(r, databaseBytes);
    const ms = Math.max(policy.floorMs, Math.round(policy.multiple * rehearsed * scale));
    return {
        ms,
        why: `its rehearsal budget of ${seconds(ms)} (${policy.multiple} × ${seconds(rehearsed)} in the rehearsal × ${scale.toFixed(2)} the size, at least ${seconds(policy.floorMs)}; rollout:rehearsal, rollout:budgetMultiple, rollout:budgetFloor)`,
    };
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

export interface RehearsalComparison {
    /** Differences in kind (other revisions, other SQL) or in size beyond the factor. */
    warnings: string[];
    /** Each step: rehearsed, projected for production, and its budget. */
    projections: { step: BudgetedStep; rehearsedMs: number; projectedMs: number; budgetMs: number }[];
}

/** Production against the rehearsal: what differs, and what each step should take. */
export function compareWithRehearsal(r: Rehearsal, prod: ProductionFacts, sizeFactor: number, policy: BudgetPolicy): RehearsalComparison {
    const warnings: string[] = [];
    if (r.expectedHead !== prod.expectedHead || r.targetRevision !== prod.targetRevision) {
        warnings.push(`the rehearsal migrated ${r.expectedHead} → ${r.targetRevision}, production would migrate ${prod.expectedHead} → ${prod.targetRevision}: rehearse this migration`);
    }
    if (r.pendingSqlSha256 && prod.pendingSqlSha256 && r.pendingSqlSha256 !== prod.pendingSqlSha256) {
        warnings.push(`the pending SQL differs from the rehearsal's (sha256 ${prod.pendingSqlSha256.slice(0, 12)}… vs ${r.pendingSqlSha256.slice(0, 12)}…): rehearse the SQL production will run`);
    }
    const scale = sizeScale(r, prod.databaseBytes);
    if (scale > sizeFactor || scale < 1 / sizeFactor) {
        warnings.push(`production's database is ${scale.toFixed(1)}× the rehearsal's (${mib(prod.databaseBytes)} vs ${mib(r.databaseBytes)}), beyond rollout:rehearsalSizeFactor ${sizeFactor}: rehearse on a recent dump`);
    }
    for (const [table, rows] of Object.entries(r.rows)) {
        const now = prod.rows[table];
        if (now === undefined) continue;
        const ratio = rows > 0 ? now / rows : now > 0 ? Infinity : 1;
        if (ratio > sizeFactor || ratio < 1 / sizeFactor) warnings.push(`${table} has ${now} rows, ${Number.isFinite(ratio) ? `${ratio.toFixed(1)}×` : "against none in"} the rehearsal's ${rows}, beyond rollout:rehearsalSizeFactor ${sizeFactor}`);
    }
    const projections = BUDGETED_STEPS.flatMap((step) => {
        const rehearsedMs = r.stepMillis[step];
        const budget = stepBudget(r, step, prod.databaseBytes, policy);
        return rehearsedMs === undefined || !budget ? [] : [{ step, rehearsedMs, projectedMs: Math.round(rehearsedMs * scale), budgetMs: budget.ms }];
    });
    return { warnings, projections };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** The change ticket's table: each step, rehearsed and in production, with its budget. */
export function sideBySide(r: Rehearsal, production: Partial<Record<BudgetedStep, number>>, prodBytes: number, policy: BudgetPolicy): string {
    const lines = [
        `# Rehearsal and production, step by step`,
        "",
        `Rehearsal: ${r.source}, ${r.at}, ${mib(r.databaseBytes)}; production: ${mib(prodBytes)} (${sizeScale(r, prodBytes).toFixed(2)}× the size).`,
        "",
        "| step | rehearsal | production | budget | within |",
        "| --- | ---: | ---: | ---: | --- |",
    ];
    for (const step of BUDGETED_STEPS) {
        const rehearsed = r.stepMillis[step];
        const prod = production[step];
        const budget = stepBudget(r, step, prodBytes, policy);
        if (rehearsed === undefined && prod === undefined) continue;
        const within = prod === undefined || !budget ? "" : prod <= budget.ms ? "yes" : "NO";
        lines.push(`| ${STEP_TITLES[step]} | ${rehearsed === undefined ? "—" : seconds(rehearsed)} | ${prod === undefined ? "—" : seconds(prod)} | ${budget ? seconds(budget.ms) : "—"} | ${within} |`);
    }
    return `${lines.join("\n")}\n`;
}
