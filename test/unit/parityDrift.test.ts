import { describe, expect, it } from "vitest";
import { parseParityCutover } from "../../lib/config/config";
import { parseRolloutConfig } from "../../lib/config/parseRolloutConfig";
import { describeParityDrift } from "../../lib/runbook/parityDrift";

describe("the parity cut-over", () => {
    it("is a time or an id; unset means no drift gate", () => {
        expect(parseParityCutover("2025-03-01T00:00:00Z", undefined)).toEqual({ cutover: { kind: "time", value: "2025-03-01T00:00:00Z", column: undefined } });
        expect(parseParityCutover("2025-03-01", "exported_at").cutover).toEqual({ kind: "time", value: "2025-03-01", column: "exported_at" });
        expect(parseParityCutover("120345", undefined).cutover).toEqual({ kind: "id", value: "120345", column: undefined });
        expect(parseParityCutover(undefined, undefined)).toEqual({});
    });

    it("refuses what it cannot compare, naming the key", () => {
        expect(parseParityCutover("last tuesday", undefined).problem).toMatch(/^rollout:parityCutover must be the time of the parity fix \(ISO 8601/);
        expect(parseParityCutover("2025-13-45", undefined).problem).toMatch(/^rollout:parityCutover must be/);
        expect(parseParityCutover(undefined, "created_at").problem).toMatch(/^rollout:parityCutoverColumn is set but rollout:parityCutover is not/);
        expect(parseParityCutover("1", "id; DROP TABLE x").problem).toMatch(/^rollout:parityCutoverColumn must be a column name/);
        const problems = (() => {
            try {
                parseRolloutConfig({ dbUrl: "postgresql://protea:pw@127.0.0.1/protea", parityCutover: "soon" }, "/home/op", "/");
                return "";
            } catch (error) {
                return (error as Error).message;
            }
        })();
        expect(problems).toContain('rollout:parityCutover must be the time of the parity fix (ISO 8601, e.g. 2025-03-01T00:00:00Z) or the first id after it (a whole number), got "soon"');
    });

    it("describes a table's counts with the first drifted ids", () => {
        const line = describeParityDrift(
            { table: "dataset", column: "created_at", before: { rows: 10, differ: 10 }, after: { rows: 10, differ: 12 }, driftIds: ["3", "4"] },
            { kind: "time", value: "2025-03-01T00:00:00Z" },
        );
        expect(line).toBe("dataset: 10 rows before the cut-over (created_at < 2025-03-01T00:00:00Z), 10 differ as expected; 10 after it, 12 differ (first ids: 3, 4, …)");
    });
});
