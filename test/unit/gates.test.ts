import { describe, expect, it } from "vitest";
import { judgeRevisions, parseRevisions } from "../../lib/runbook/alembic";
import { parseBackfillSummary } from "../../lib/runbook/backfillSummary";
import { schemaMismatches } from "../../lib/postgres/schemaChecks";
import { execFileSync } from "node:child_process";
import { commandLine, quote, stepMillis, timed } from "../../lib/process/shell";

describe("alembic revisions", () => {
    it("reads revision ids from alembic's output, ignoring log lines", () => {
        const output = "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.\n9d2fb5a07e4c (head)\n";
        expect(parseRevisions(output)).toEqual(["9d2fb5a07e4c"]);
        expect(parseRevisions("")).toEqual([]);
        // Any id alembic accepts, not only hex; "(head)" and "(mergepoint)" marks are read past.
        expect(parseRevisions("t16_schema_sha_v2 (head) (mergepoint)\n")).toEqual(["t16_schema_sha_v2"]);
    });

    it("passes when the database is at the expected head and the checkout's head is the target", () => {
        expect(judgeRevisions(["9d2fb5a07e4c"], ["a3c1d8e2f4b6"], "9d2fb5a07e4c", "a3c1d8e2f4b6").ok).toBe(true);
    });

    it("names both revisions and says to reconcile with the deployer when current differs", () => {
        const verdict = judgeRevisions(["1111aaaa2222"], ["a3c1d8e2f4b6"], "9d2fb5a07e4c", "a3c1d8e2f4b6");
        expect(verdict.ok).toBe(false);
        expect(verdict.message).toContain("1111aaaa2222");
        expect(verdict.message).toContain("9d2fb5a07e4c");
        expect(verdict.message).toContain("reconcile with the deployer");
    });

    it("reports a database already at the target revision as such", () => {
        const verdict = judgeRevisions(["a3c1d8e2f4b6"], ["a3c1d8e2f4b6"], "9d2fb5a07e4c", "a3c1d8e2f4b6");
        expect(verdict).toMatchObject({ ok: false, alreadyAtTarget: true });
        expect(verdict.message).toContain("already at the target revision a3c1d8e2f4b6");
    });

    it("accepts the target among several heads; fails on a checkout without the migration", () => {
        expect(judgeRevisions(["9d2fb5a07e4c"], ["a3c1d8e2f4b6", "ffff00001111"], "9d2fb5a07e4c", "a3c1d8e2f4b6").ok).toBe(true);
        expect(judgeRevisions(["9d2fb5a07e4c"], ["ffff00001111"], "9d2fb5a07e4c", "a3c1d8e2f4b6").ok).toBe(false);
        expect(judgeRevisions(["9d2fb5a07e4c"], ["9d2fb5a07e4c"], "9d2fb5a07e4c", "a3c1d8e2f4b6").message).toContain("deploy the application version");
    });
});

describe("backfill summary", () => {
    it("reads per-table counts", () => {
        const out = "canonical digest: 0123456789ab\ndataset: updated=2 skipped=0\nreranker_model: updated=49 skipped=2\n";
        expect(parseBackfillSummary(out)).toEqual({ dataset: { updated: 2, skipped: 0 }, reranker_model: { updated: 49, skipped: 2 } });
        expect(parseBackfillSummary("dataset: would_update=3 skipped=1")).toEqual({ dataset: { would_update: 3, skipped: 1 } });
    });
});

describe("schema mismatches", () => {
    const state = { table: "dataset", column: "schema_sha_v2", index: "ix_dataset_schema_sha_v2", columnExists: true, indexExists: false };
    it("lists what is not as expected", () => {
        expect(schemaMismatches([state], "present")).toEqual(["index ix_dataset_schema_sha_v2 on dataset is missing"]);
        expect(schemaMismatches([state], "absent")).toEqual(["column dataset.schema_sha_v2 is present"]);
    });
});

describe("shell quoting", () => {
    it("quotes anything a shell would interpret", () => {
        expect(quote("plain-word_1.2")).toBe("plain-word_1.2");
        expect(quote("it's $HOME; rm -rf /")).toBe(`'it'\\''s $HOME; rm -rf /'`);
        expect(commandLine("echo", "a b", "")).toBe("echo 'a b' ''");
    });
});

describe("timed steps", () => {
    it("reports a step's wall time on stderr and keeps its exit status", () => {
        const run = (cmd: string) => {
            try {
                execFileSync("/bin/sh", ["-c", cmd], { stdio: ["ignore", "pipe", "pipe"] });
                return { code: 0, stderr: "" };
            } catch (err) {
                return { code: (err as { status: number }).status, stderr: String((err as { stderr: Buffer }).stderr) };
            }
        };
        const ok = execFileSync("/bin/sh", ["-c", `${timed("nap", "sleep 0.2")} 2>&1`], { encoding: "utf8" });
        // The wrapper reports the step (how long it took is a benchmark's business, not a test's).
        expect(ok).toMatch(/^step nap took \d+ ms$/m);
        expect(stepMillis(ok, "nap")).toEqual(expect.any(Number));
        const failed = run(`${timed("fail", "exit 7")} && echo not-reached`);
        expect(failed.code).toBe(7);
        expect(stepMillis(failed.stderr, "fail")).toEqual(expect.any(Number));
        expect(stepMillis("step other took 5 ms", "fail")).toBeUndefined();
    });
});
