import { describe, expect, it } from "vitest";
import { analyzeLockSafety, describeTable, functionsInDefaults, LockFinding, tablesInSql } from "../../lib/preview/lockSafety";
import { SqlParseError } from "../../lib/preview/migrationSql";

/** What `alembic upgrade 9d2fb5a07e4c:a3c1d8e2f4b6 --sql` prints for the T1.6 migration. */
const T16_SQL = `BEGIN;

-- Running upgrade 9d2fb5a07e4c -> a3c1d8e2f4b6

ALTER TABLE dataset ADD COLUMN schema_sha_v2 TEXT;

ALTER TABLE reranker_model ADD COLUMN schema_sha_v2 TEXT;

CREATE INDEX ix_dataset_schema_sha_v2 ON dataset (schema_sha_v2);

CREATE INDEX ix_reranker_model_schema_sha_v2 ON reranker_model (schema_sha_v2);

UPDATE alembic_version SET version_num='a3c1d8e2f4b6' WHERE alembic_version.version_num = '9d2fb5a07e4c';

COMMIT;
`;

const ESTIMATES = {
    dataset: { rows: 1200, source: "statistics" as const },
    reranker_model: { rows: 2_500_000, source: "statistics" as const },
};

async function only(sql: string, context = {}): Promise<LockFinding> {
    const { findings } = await analyzeLockSafety(sql, context);
    expect(findings).toHaveLength(1);
    return findings[0];
}

describe("lock safety of the T1.6 migration", () => {
    it("warns that both index builds block writes, naming each table with its row estimate", async () => {
        const report = await analyzeLockSafety(T16_SQL, { rowEstimates: ESTIMATES });
        expect(report.statements).toBe(7);
        expect(report.parserVersion).toBeGreaterThanOrEqual(160000);
        const builds = report.findings.filter((f) => f.holds === "index build");
        expect(builds.map((f) => [f.statement, f.table, f.lock, f.blocks, f.severity])).toEqual([
            [4, "dataset", "SHARE", "writes", "warning"],
            [5, "reranker_model", "SHARE", "writes", "warning"],
        ]);
        expect(builds[0].message).toContain("SHARE on dataset (~1,200 rows) blocks writes for the whole index build");
        expect(builds[1].message).toContain("SHARE on reranker_model (~2,500,000 rows) blocks writes for the whole index build");
        expect(builds[0].message).toContain("safer: CREATE INDEX CONCURRENTLY, outside a transaction block");
    });

    it("warns that the ADD COLUMNs' ACCESS EXCLUSIVE locks last until COMMIT, through both index builds", async () => {
        const { findings } = await analyzeLockSafety(T16_SQL, { rowEstimates: ESTIMATES });
        const adds = findings.filter((f) => f.sql.includes("ADD COLUMN"));
        expect(adds.map((f) => [f.table, f.lock, f.blocks, f.holds, f.heldThrough, f.severity])).toEqual([
            ["dataset", "ACCESS EXCLUSIVE", "reads and writes", "brief", [4, 5], "warning"],
            ["reranker_model", "ACCESS EXCLUSIVE", "reads and writes", "brief", [4, 5], "warning"],
        ]);
        expect(adds[0].message).toContain("no rewrite");
        expect(adds[0].message).toContain("held until COMMIT, through statements 4, 5 (index build on dataset, index build on reranker_model)");
    });

    it("does not count alembic's one-row version bump as a slow statement", async () => {
        const { findings } = await analyzeLockSafety(T16_SQL);
        const bump = findings.find((f) => f.table === "alembic_version")!;
        expect(bump).toMatchObject({ lock: "ROW EXCLUSIVE", blocks: "nothing", severity: "info" });
        expect(findings.find((f) => f.statement === 5)!.heldThrough).toEqual([]);
    });

    it("without row estimates, names the tables alone", async () => {
        const { findings } = await analyzeLockSafety(T16_SQL);
        expect(findings.find((f) => f.statement === 4)!.message).toContain("SHARE on dataset blocks writes");
        expect(findings.every((f) => f.rowEstimate === undefined)).toBe(true);
    });
});

describe("lock safety of other statements", () => {
    it("CREATE INDEX CONCURRENTLY outside a transaction blocks nothing; inside one it would fail", async () => {
        const outside = await only("CREATE INDEX CONCURRENTLY ix ON dataset (schema_sha_v2)");
        expect(outside).toMatchObject({ lock: "SHARE UPDATE EXCLUSIVE", blocks: "nothing", severity: "info" });
        const { findings } = await analyzeLockSafety("BEGIN; CREATE INDEX CONCURRENTLY ix ON dataset (schema_sha_v2); COMMIT;");
        expect(findings[0].severity).toBe("warning");
        expect(findings[0].message).toContain("CREATE INDEX CONCURRENTLY cannot run inside a transaction block");
    });

    it("ADD COLUMN outside a transaction, nullable or with a stable or constant default, is a brief catalog change", async () => {
        for (const sql of [
            "ALTER TABLE dataset ADD COLUMN note text",
            "ALTER TABLE dataset ADD COLUMN created timestamptz NOT NULL DEFAULT now()",
            "ALTER TABLE dataset ADD COLUMN created timestamptz DEFAULT CURRENT_TIMESTAMP",
            "ALTER TABLE dataset ADD COLUMN flag boolean NOT NULL DEFAULT false",
        ]) {
            expect(await only(sql), sql).toMatchObject({ lock: "ACCESS EXCLUSIVE", holds: "brief", severity: "info" });
        }
    });

    it("ADD COLUMN with a volatile default, a serial or a generated column rewrites the table", async () => {
        const uuid = await only("ALTER TABLE dataset ADD COLUMN token uuid DEFAULT gen_random_uuid()", { rowEstimates: ESTIMATES });
        expect(uuid).toMatchObject({ holds: "table rewrite", blocks: "reads and writes", severity: "warning" });
        expect(uuid.message).toContain("volatile default (gen_random_uuid())");
        expect(uuid.message).toContain("dataset (~1,200 rows) blocks reads and writes while it rewrites every row");
        expect(await only("ALTER TABLE dataset ADD COLUMN n bigserial")).toMatchObject({ holds: "table rewrite", severity: "warning" });
        expect(await only("ALTER TABLE dataset ADD COLUMN g int GENERATED ALWAYS AS (id * 2) STORED")).toMatchObject({ holds: "table rewrite" });
    });

    it("reads a default's function volatility from the catalog when given, and calls an unknown one out", async () => {
        const sql = "ALTER TABLE dataset ADD COLUMN v text DEFAULT my_func()";
        expect(await functionsInDefaults(sql)).toEqual(["my_func"]);
        const unknown = await only(sql);
        expect(unknown).toMatchObject({ holds: "table rewrite", severity: "warning" });
        expect(unknown.message).toContain("unknown volatility");
        expect(await only(sql, { functionVolatility: { my_func: "s" } })).toMatchObject({ holds: "brief", severity: "info" });
        expect(await only(sql, { functionVolatility: { my_func: "v" } })).toMatchObject({ holds: "table rewrite", severity: "warning" });
    });

    it("ALTER COLUMN TYPE rewrites; SET NOT NULL scans; both under ACCESS EXCLUSIVE", async () => {
        expect(await only("ALTER TABLE dataset ALTER COLUMN id TYPE bigint")).toMatchObject({ lock: "ACCESS EXCLUSIVE", holds: "table rewrite", severity: "warning" });
        expect(await only("ALTER TABLE dataset ALTER COLUMN name SET NOT NULL")).toMatchObject({ lock: "ACCESS EXCLUSIVE", holds: "table scan", severity: "warning" });
    });

    it("constraints: validated ones scan under the lock, NOT VALID ones do not, VALIDATE lets writes through", async () => {
        const fk = await only("ALTER TABLE reranker_model ADD CONSTRAINT fk FOREIGN KEY (dataset_id) REFERENCES dataset (id)");
        expect(fk).toMatchObject({ lock: "SHARE ROW EXCLUSIVE", blocks: "writes", holds: "table scan", severity: "warning" });
        expect(fk.message).toContain("NOT VALID");
        expect(await only("ALTER TABLE dataset ADD CONSTRAINT c CHECK (id > 0) NOT VALID")).toMatchObject({ holds: "brief", severity: "info" });
        expect(await only("ALTER TABLE dataset VALIDATE CONSTRAINT c")).toMatchObject({ lock: "SHARE UPDATE EXCLUSIVE", blocks: "nothing", severity: "info" });
        expect(await only("ALTER TABLE dataset ADD PRIMARY KEY (id)")).toMatchObject({ holds: "index build", severity: "warning" });
        expect(await only("ALTER TABLE dataset ADD CONSTRAINT pk PRIMARY KEY USING INDEX ix")).toMatchObject({ holds: "brief", severity: "info" });
    });

    it("one ALTER TABLE with several commands takes the strongest lock and the longest hold", async () => {
        const finding = await only("ALTER TABLE dataset ADD COLUMN a text, ALTER COLUMN id TYPE bigint, ADD COLUMN b text");
        expect(finding).toMatchObject({ lock: "ACCESS EXCLUSIVE", holds: "table rewrite", severity: "warning" });
    });

    it("VACUUM FULL and CLUSTER rewrite; REINDEX blocks writes unless CONCURRENTLY", async () => {
        expect(await only("VACUUM FULL dataset")).toMatchObject({ lock: "ACCESS EXCLUSIVE", holds: "table rewrite", severity: "warning" });
        expect(await only("CLUSTER dataset USING ix")).toMatchObject({ lock: "ACCESS EXCLUSIVE", holds: "table rewrite" });
        expect(await only("REINDEX TABLE dataset")).toMatchObject({ lock: "SHARE", blocks: "writes", severity: "warning" });
        expect(await only("REINDEX TABLE CONCURRENTLY dataset")).toMatchObject({ blocks: "nothing", severity: "info" });
    });

    it("reads SQL as PostgreSQL does: quoted names, semicolons in strings, comments", async () => {
        const sql = `-- a comment; not a statement
ALTER TABLE "Weird;Name" ADD COLUMN c text DEFAULT 'a;b' /* ; */;
CREATE INDEX "ix;1" ON public."Weird;Name" (c);`;
        const { findings, statements } = await analyzeLockSafety(sql, { rowEstimates: { "public.Weird;Name": { rows: 7, source: "count" } } });
        expect(statements).toBe(2);
        expect(findings.map((f) => f.table)).toEqual(["Weird;Name", "public.Weird;Name"]);
        expect(findings[1].message).toContain("public.Weird;Name (7 rows)");
        expect(await tablesInSql(sql)).toEqual(["Weird;Name", "public.Weird;Name"]);
    });

    it("matches row estimates by the name as written (the probe looks each one up on the search_path)", async () => {
        const finding = await only("CREATE INDEX ix ON public.dataset (name)", { rowEstimates: ESTIMATES });
        expect(finding.rowEstimate).toBeUndefined();
        const unqualified = await only("CREATE INDEX ix ON dataset (name)", { rowEstimates: { dataset: { rows: 3, source: "planner" } } });
        expect(unqualified.message).toContain("dataset (~3 rows, never analyzed: the planner's guess)");
    });

    it("SQL that does not parse is an error that says where", async () => {
        await expect(analyzeLockSafety("ALTER TABLE dataset ADD COLUMN")).rejects.toThrow(SqlParseError);
        await expect(analyzeLockSafety("CREATE INDEX ON")).rejects.toThrow(/does not parse with PostgreSQL's grammar/);
    });

    it("describes tables by where their row count comes from", () => {
        expect(describeTable("dataset")).toBe("dataset");
        expect(describeTable("dataset", { rows: 1234.6, source: "statistics" })).toBe("dataset (~1,235 rows)");
        expect(describeTable("dataset", { rows: 3, source: "count" })).toBe("dataset (3 rows)");
        expect(describeTable("alembic_version", { rows: 1, source: "count" })).toBe("alembic_version (1 row)");
    });
});
