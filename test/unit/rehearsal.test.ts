import { describe, expect, it } from "vitest";
import { compareWithRehearsal, pendingSqlChecksum, Rehearsal, sideBySide, stepBudget } from "../../lib/runbook/rehearsal";

const rehearsal: Rehearsal = {
    at: "2026-11-26T12:00:00.000Z",
    source: "dump prod-2026-11-25.dump",
    databaseBytes: 1_000_000_000,
    rows: { dataset: 3000, reranker_model: 12000 },
    expectedHead: "9d2fb5a07e4c",
    targetRevision: "a3c1d8e2f4b6",
    pendingSqlSha256: pendingSqlChecksum("ALTER TABLE dataset ADD COLUMN schema_sha_v2 TEXT;"),
    stepMillis: { backup: 40_000, upgrade: 3_000, backfillApply: 20_000 },
};
const policy = { multiple: 3, floorMs: 60_000 };

describe("rehearsal budgets", () => {
    it("a step's budget is the multiple of its rehearsed time scaled by size, never under the floor", () => {
        expect(stepBudget(rehearsal, "backup", 2_000_000_000, policy)?.ms).toBe(240_000);
        expect(stepBudget(rehearsal, "upgrade", 2_000_000_000, policy)?.ms).toBe(60_000);
        expect(stepBudget(rehearsal, "backfillDryRun", 2_000_000_000, policy)).toBeUndefined();
        expect(stepBudget(rehearsal, "backup", 1_000_000_000, policy)?.why).toBe(
            "its rehearsal budget of 120 s (3 × 40 s in the rehearsal × 1.00 the size, at least 60 s; rollout:rehearsal, rollout:budgetMultiple, rollout:budgetFloor)",
        );
    });

    it("production like the rehearsal draws no warning and gets projections", () => {
        const prod = { databaseBytes: 1_200_000_000, rows: { dataset: 3100, reranker_model: 12500 }, expectedHead: "9d2fb5a07e4c", targetRevision: "a3c1d8e2f4b6", pendingSqlSha256: rehearsal.pendingSqlSha256 };
        const { warnings, projections } = compareWithRehearsal(rehearsal, prod, 4, policy);
        expect(warnings).toEqual([]);
        expect(projections).toEqual([
            { step: "backup", rehearsedMs: 40_000, projectedMs: 48_000, budgetMs: 144_000 },
            { step: "upgrade", rehearsedMs: 3_000, projectedMs: 3_600, budgetMs: 60_000 },
            { step: "backfillApply", rehearsedMs: 20_000, projectedMs: 24_000, budgetMs: 72_000 },
        ]);
    });

    it("warns on other revisions, other SQL, and size beyond the factor either way", () => {
        const prod = { databaseBytes: 100_000_000, rows: { dataset: 30_000, reranker_model: 12000 }, expectedHead: "9d2fb5a07e4c", targetRevision: "b1", pendingSqlSha256: pendingSqlChecksum("other") };
        const { warnings } = compareWithRehearsal(rehearsal, prod, 4, policy);
        expect(warnings).toHaveLength(4);
        expect(warnings[0]).toContain("production would migrate 9d2fb5a07e4c → b1");
        expect(warnings[1]).toContain("the pending SQL differs");
        expect(warnings[2]).toContain("production's database is 0.1× the rehearsal's");
        expect(warnings[3]).toBe("dataset has 30000 rows, 10.0× the rehearsal's 3000, beyond rollout:rehearsalSizeFactor 4");
    });

    it("puts both side by side, marking a step over its budget", () => {
        const table = sideBySide(rehearsal, { backup: 50_000, upgrade: 61_000, backfillApply: 10_000 }, 1_000_000_000, policy);
        expect(table).toContain("| pre-flight pg_dump -F c, verified | 40 s | 50 s | 120 s | yes |");
        expect(table).toContain("| alembic upgrade | 3.0 s | 61 s | 60 s | NO |");
        expect(table).not.toContain("backfill --dry-run");
    });
});
