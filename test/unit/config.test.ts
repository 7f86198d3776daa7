import { describe, expect, it } from "vitest";
import { DEFAULT_NEW_COLUMNS, RolloutConfigError } from "../../lib/config/config";
import { parseRolloutConfig } from "../../lib/config/parseRolloutConfig";

const URL = "postgresql+psycopg://protea:s3cr3t-pw@127.0.0.1:5432/protea";

function problemsOf(raw: Record<string, string | undefined>): string[] {
    try {
        parseRolloutConfig(raw, "/home/op");
    } catch (err) {
        expect(err).toBeInstanceOf(RolloutConfigError);
        return (err as RolloutConfigError).problems;
    }
    throw new Error("expected a RolloutConfigError");
}

describe("parseRolloutConfig", () => {
    it("fills the runbook's T1.6 defaults", () => {
        const config = parseRolloutConfig({ dbUrl: URL }, "/home/op");
        expect(config).toMatchObject({
            appDir: "/home/op/Thesis2/repositories/PROTEA",
            alembic: "poetry run alembic",
            backfill: "poetry run python scripts/backfill_schema_sha_v2.py",
            expectedHead: "9d2fb5a07e4c",
            targetRevision: "a3c1d8e2f4b6",
            pgAccess: "docker-exec",
            container: "protea-postgres-1",
            dbUser: "protea",
            dbName: "protea",
            backupDir: "/home/op/Thesis2/backups",
            backupLabel: "pre-t16",
            backupCompression: 1,
            batchSize: 100,
            forceBackfill: false,
            lockTimeout: "2s",
            lockRetries: 10,
            lockRetryBudget: "2min",
            paritySample: 10,
            protect: true,
        });
        expect(config.newColumns).toEqual(DEFAULT_NEW_COLUMNS);
        expect(config.database).toEqual({ host: "127.0.0.1", port: 5432, user: "protea", password: "s3cr3t-pw", database: "protea" });
    });

    it("names the key and the command that fixes a missing dbUrl", () => {
        const [problem] = problemsOf({});
        expect(problem).toContain("rollout:dbUrl is not set");
        expect(problem).toContain("pulumi config set --secret rollout:dbUrl");
    });

    it("rejects an unknown pgAccess, naming the accepted values", () => {
        expect(problemsOf({ dbUrl: URL, pgAccess: "ssh" })).toEqual(['rollout:pgAccess must be "docker-exec" or "url", got "ssh"']);
    });

    it("takes rollout:backupCompression as a gzip level 0-9 and names the key otherwise", () => {
        expect(parseRolloutConfig({ dbUrl: URL, backupCompression: "0" }, "/home/op").backupCompression).toBe(0);
        expect(parseRolloutConfig({ dbUrl: URL, backupCompression: "9" }, "/home/op").backupCompression).toBe(9);
        for (const bad of ["10", "-1", "1.5", "fast", "", " 1", "0x1"]) {
            expect(problemsOf({ dbUrl: URL, backupCompression: bad }), bad).toEqual([
                `rollout:backupCompression must be a gzip level for pg_dump -Z, a whole number from 0 (no compression) to 9 (smallest, slowest), got "${bad}"`,
            ]);
        }
    });

    it("takes rollout:alembicVersionTable as a table or schema.table name and names the key otherwise", () => {
        expect(parseRolloutConfig({ dbUrl: URL }, "/home/op").alembicVersionTable).toBe("alembic_version");
        expect(parseRolloutConfig({ dbUrl: URL, alembicVersionTable: "app.schema_versions" }, "/home/op").alembicVersionTable).toBe("app.schema_versions");
        for (const bad of ["a.b.c", "versions; DROP TABLE x", "\"quoted\"", "1table", ".versions"]) {
            expect(problemsOf({ dbUrl: URL, alembicVersionTable: bad })[0], bad).toMatch(/^rollout:alembicVersionTable must be a table or schema\.table name/);
        }
    });

    it("lists every problem at once", () => {
        const problems = problemsOf({ dbUrl: URL, batchSize: "0", forceBackfill: "yes", expectedHead: "head~1", lockTimeout: "soon" });
        expect(problems).toHaveLength(4);
        for (const key of ["batchSize", "forceBackfill", "expectedHead", "lockTimeout"]) {
            expect(problems.some((p) => p.startsWith(`rollout:${key} `))).toBe(true);
        }
    });

    it("never repeats the database password in an error", () => {
        const problems = problemsOf({ dbUrl: "mysql://protea:s3cr3t-pw@db/protea" });
        expect(problems.join("\n")).toContain("rollout:dbUrl");
        expect(problems.join("\n")).not.toContain("s3cr3t-pw");
    });

    it("refuses a target revision equal to the expected head", () => {
        expect(problemsOf({ dbUrl: URL, targetRevision: "9d2fb5a07e4c" })[0]).toContain("nothing to migrate");
    });

    it("parses newColumns as JSON and reports bad entries by position", () => {
        const columns = [{ table: "t", column: "c", index: "ix_t_c", legacyColumn: "l" }];
        expect(parseRolloutConfig({ dbUrl: URL, newColumns: JSON.stringify(columns) }).newColumns).toEqual(columns);
        expect(problemsOf({ dbUrl: URL, newColumns: '[{"table":"t; drop"}]' })[0]).toMatch(/entry 0 has a missing or invalid table, column, index, legacyColumn/);
        expect(problemsOf({ dbUrl: URL, newColumns: "nope" })[0]).toContain("not valid JSON");
    });
});
