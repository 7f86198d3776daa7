import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { previewReport, probeCommand } from "../../components/previewReport";
import { parseRolloutConfig } from "../../lib/config/parseRolloutConfig";
import { formatBytes } from "../../lib/process/format";
import { condense, formatProbeReport, parseProbeReport, Probe, ProbeReport, PROBE_NAMES, redactReport, secretsOf } from "../../lib/preview/probeReport";
import { backupSpace, nearestExistingDir, parseBackfillDryRun } from "../../lib/preview/probes";
import { readOnlyPgOptions } from "../../lib/preview/readOnlyDatabase";

const ok = <T>(value: T): Probe<T> => ({ ok: true, value, millis: 5 });
const failed = (error: string): Probe<never> => ({ ok: false, error, millis: 5 });

function healthyReport(): ProbeReport {
    return {
        database: ok({ database: "protea", host: "db.internal", port: 5432, serverVersion: "16.4", serverVersionNum: 160004, sizeBytes: 2_040_109_465 }),
        backupSpace: ok({ backupDir: "/backups", checkedDir: "/backups", freeBytes: 50 * 1024 ** 3, expectedDumpBytes: 2_040_109_465, enough: true }),
        alembicCurrent: ok(["9d2fb5a07e4c"]),
        alembicHeads: ok(["a3c1d8e2f4b6"]),
        preflightGate: ok({ ok: true, alreadyAtTarget: false, message: "alembic current = 9d2fb5a07e4c (expected head); checkout head = a3c1d8e2f4b6 (target)" }),
        pendingSql: ok({ range: "9d2fb5a07e4c:a3c1d8e2f4b6", sql: "BEGIN;\nALTER TABLE dataset ADD COLUMN schema_sha_v2 TEXT;\nCOMMIT;" }),
        backfill: ok({ source: "row counts", tables: { dataset: { wouldUpdate: 2, skipped: 0 }, reranker_model: { wouldUpdate: 51, skipped: 0 } } }),
        blockers: ok([]),
        lockSafety: ok({
            statements: 3,
            parserVersion: 160001,
            findings: [
                {
                    statement: 2,
                    sql: "ALTER TABLE dataset ADD COLUMN schema_sha_v2 TEXT",
                    table: "dataset",
                    lock: "ACCESS EXCLUSIVE",
                    blocks: "reads and writes",
                    holds: "brief",
                    heldThrough: [],
                    severity: "info",
                    message: "statement 2 (…): adds column schema_sha_v2 to the catalog only (no rewrite)",
                },
            ],
        }),
        millis: 1200,
    };
}

const texts = (lines: { level: string; text: string }[], level: "info" | "warn") => lines.filter((l) => l.level === level).map((l) => l.text);

describe("probe report formatting", () => {
    it("once this stack's migration is applied, neither its pending SQL nor its lock reading shows, and nothing warns", () => {
        const report = healthyReport();
        report.alembicCurrent = ok(["a3c1d8e2f4b6"]);
        report.preflightGate = ok({ ok: false, alreadyAtTarget: true, message: "alembic current is a3c1d8e2f4b6, expected 9d2fb5a07e4c" });
        const locks = healthyReport().lockSafety;
        if (!locks.ok) throw new Error("the healthy report's lock reading");
        report.lockSafety = ok({ ...locks.value, findings: [{ ...locks.value.findings[0], severity: "warning", message: "statement 2 blocks writers" }] });
        const lines = formatProbeReport(report, { stackHoldsMigration: true });
        expect(texts(lines, "warn")).toEqual([]);
        expect(lines.some((l) => /pending migration SQL|lock safety/.test(l.text))).toBe(false);
        expect(texts(lines, "info")).toContain("dry run: the migration is applied, by this stack: alembic current is the target revision; no DDL is pending");
        // Not this stack's: the gate would stop, and the SQL shows.
        expect(texts(formatProbeReport(report), "warn")).toContain("dry run: the update would stop here: alembic current is a3c1d8e2f4b6, expected 9d2fb5a07e4c");
    });

    it("never says the gate would pass when the client tools would stop it", () => {
        const report = healthyReport();
        report.clientTools = ok({ ok: false, message: 'rollout:container "c" exists but is exited, not running: start it (docker start c) before the rollout' });
        const lines = formatProbeReport(report);
        expect(texts(lines, "warn")).toEqual(['dry run: the update would stop at the preflight gate: rollout:container "c" exists but is exited, not running: start it (docker start c) before the rollout']);
        expect(lines.some((l) => l.text.includes("the preflight gate would pass"))).toBe(false);
        expect(texts(lines, "info").some((l) => l.includes("but the gate would stop on the client tools above"))).toBe(true);
    });

    it("a healthy report is all information, in the runbook's order", () => {
        const lines = formatProbeReport(healthyReport());
        expect(texts(lines, "warn")).toEqual([]);
        expect(lines.map((l) => l.text.split(":")[1].trim().split(" ")[0])).toEqual([
            "database", "backup", "alembic", "alembic", "the", "pending", "lock", "lock", "no", "backfill",
        ]);
        expect(lines[0].text).toBe("dry run: database protea at db.internal:5432 answers: PostgreSQL 16.4, 1.9 GiB");
        expect(lines[1].text).toBe("dry run: backup: 50.0 GiB free in /backups; the dump needs up to 1.9 GiB (the database's size)");
        expect(texts(lines, "info")).toContain("dry run: the preflight gate would pass: alembic current = 9d2fb5a07e4c (expected head); checkout head = a3c1d8e2f4b6 (target)");
        expect(lines.find((l) => l.text.includes("pending migration SQL"))!.text).toContain("ALTER TABLE dataset ADD COLUMN schema_sha_v2 TEXT;");
        expect(lines.at(-1)!.text).toBe("dry run: backfill would write: dataset 2 rows (0 skipped), reranker_model 51 rows (0 skipped) (the new columns do not exist yet, so every row)");
    });

    it("a failed gate says the update would stop here, and the other facts stay", () => {
        const report = healthyReport();
        report.preflightGate = ok({ ok: false, alreadyAtTarget: false, message: "alembic current is 1111aaaa2222 but rollout:expectedHead is 9d2fb5a07e4c: stop and reconcile with the deployer" });
        const lines = formatProbeReport(report);
        expect(texts(lines, "warn")).toEqual(["dry run: the update would stop here: alembic current is 1111aaaa2222 but rollout:expectedHead is 9d2fb5a07e4c: stop and reconcile with the deployer"]);
        expect(lines).toHaveLength(formatProbeReport(healthyReport()).length);
    });

    it("names each session in the migration's way as a warning: pid, user, application, state, age, locks, query", () => {
        const report = healthyReport();
        report.blockers = ok([
            { pid: 4242, user: "analyst", application: "psql", state: "idle in transaction", ageSeconds: 95, query: "SELECT count(*) FROM reranker_model", locks: "holds AccessShareLock on reranker_model", why: "has locks on the tables, idle in a transaction" },
        ]);
        expect(texts(formatProbeReport(report), "warn")).toEqual([
            'dry run: in the migration\'s way (has locks on the tables, idle in a transaction): pid 4242 (user analyst, application "psql", idle in transaction for 95 s; holds AccessShareLock on reranker_model): SELECT count(*) FROM reranker_model',
        ]);
    });

    it("client tools that would fail the gate are a warning naming what to do; a good pair is information", () => {
        const report = healthyReport();
        report.clientTools = ok({ ok: false, message: 'rollout:container is "pg-9", but Docker has no container of that name: set rollout:container to the database\'s container (docker ps lists them)' });
        expect(texts(formatProbeReport(report), "warn")).toEqual([
            'dry run: the update would stop at the preflight gate: rollout:container is "pg-9", but Docker has no container of that name: set rollout:container to the database\'s container (docker ps lists them)',
        ]);
        report.clientTools = ok({ ok: true, message: "pg_dump 16 and pg_restore 16 in container protea-postgres-1 can back up and restore PostgreSQL 16" });
        expect(texts(formatProbeReport(report), "warn")).toEqual([]);
        expect(texts(formatProbeReport(report), "info")).toContain("dry run: client tools: pg_dump 16 and pg_restore 16 in container protea-postgres-1 can back up and restore PostgreSQL 16");
        // Read back from the probe's JSON line.
        expect(parseProbeReport(JSON.stringify(report)).clientTools).toEqual(report.clientTools);
    });

    it("each failed probe is one warning with its reason; a long traceback keeps its first and last lines", () => {
        const report = healthyReport();
        report.database = failed("the database does not answer at 127.0.0.1:1 (database \"protea\", user \"protea\"): connect ECONNREFUSED");
        report.alembicCurrent = failed(["`alembic current` failed (exit 1):", "Traceback", "  File a", "  File b", "psycopg.OperationalError: connection refused", "(Background on this error)"].join("\n"));
        const warnings = texts(formatProbeReport(report), "warn");
        expect(warnings[0]).toBe("dry run: database: could not be probed: the database does not answer at 127.0.0.1:1 (database \"protea\", user \"protea\"): connect ECONNREFUSED");
        expect(warnings[1]).toBe("dry run: alembic current: could not be probed: `alembic current` failed (exit 1):\n  …\n  File b\npsycopg.OperationalError: connection refused\n(Background on this error)");
    });

    it("warns when the backup directory has less room than the database's size", () => {
        const report = healthyReport();
        report.backupSpace = ok({ backupDir: "/backups/t16", checkedDir: "/backups", freeBytes: 1024 ** 3, expectedDumpBytes: 2 * 1024 ** 3, enough: false });
        expect(texts(formatProbeReport(report), "warn")).toEqual([
            "dry run: backup: only 1.0 GiB free in /backups/t16 (not created yet; checked /backups), but the dump may need up to 2.0 GiB (the database's size): free space or change rollout:backupDir",
        ]);
    });

    it("lock-safety warnings are warnings, one per finding", () => {
        const report = healthyReport();
        if (!report.lockSafety.ok) throw new Error("fixture");
        report.lockSafety.value.findings.push({ ...report.lockSafety.value.findings[0], severity: "warning", message: "statement 4 (CREATE INDEX …): SHARE on dataset (~2 rows) blocks writes" });
        const lines = formatProbeReport(report);
        expect(texts(lines, "warn")).toEqual(["dry run: lock safety: statement 4 (CREATE INDEX …): SHARE on dataset (~2 rows) blocks writes"]);
        expect(texts(lines, "info")).toContain("dry run: lock safety: 3 statements read with PostgreSQL 16's parser; 1 make readers or writers wait");
    });

    it("formats sizes in binary units", () => {
        expect(formatBytes(512)).toBe("512 B");
        expect(formatBytes(1536)).toBe("1.5 KiB");
        expect(formatBytes(7_880_039)).toBe("7.5 MiB");
        expect(condense("one line")).toBe("one line");
    });
});

describe("probe report parsing", () => {
    it("reads the last JSON line, after progress output", () => {
        const report = healthyReport();
        const parsed = parseProbeReport(`probe: database answers\n${JSON.stringify(report)}`);
        expect(parsed).toEqual(report);
    });

    it("without a report, every probe fails with the probe's last stderr lines", () => {
        const parsed = parseProbeReport("", "Error: Cannot find module 'libpg-query'\n    at require");
        for (const name of PROBE_NAMES) {
            expect(parsed[name]).toMatchObject({ ok: false });
            expect((parsed[name] as { error: string }).error).toContain("the probe printed no report:\nError: Cannot find module 'libpg-query'");
        }
        expect(texts(formatProbeReport(parsed), "warn")).toHaveLength(PROBE_NAMES.length);
    });

    it("a probe missing or malformed in the report fails by name; the others stand", () => {
        const { lockSafety: _dropped, ...rest } = healthyReport();
        const parsed = parseProbeReport(JSON.stringify({ ...rest, backfill: { ok: true } }));
        expect(parsed.lockSafety).toMatchObject({ ok: false, error: "the probe did not report lockSafety" });
        expect(parsed.backfill).toMatchObject({ ok: false, error: "the probe did not report backfill" });
        expect(parsed.database).toEqual(healthyReport().database);
    });

    it("reads the backfill's dry-run summary lines", () => {
        const output = "schema_sha_v2: canonical=ab12 features=9 mode=dry-run batch_size=100\ndataset: would set schema_sha_v2=ab12 on 2 row(s)\ndataset: would_update=2 skipped=0\nreranker_model: would_update=51 skipped=3\n";
        expect(parseBackfillDryRun(output)).toEqual({ dataset: { wouldUpdate: 2, skipped: 0 }, reranker_model: { wouldUpdate: 51, skipped: 3 } });
    });
});

describe("probe secrets and safety", () => {
    const url = "postgresql+psycopg://protea:s%3Acr%40t-pass@db.internal:5432/protea";

    it("scrubs the URL and its password, encoded and decoded, from every string of a report", () => {
        // Longest first; every form a program may print the password in (lib/process/scrub.ts), the URL itself first.
        expect(secretsOf(url)[0]).toBe(url);
        expect(secretsOf(url)).toEqual(expect.arrayContaining(["s%3Acr%40t-pass", "s%3acr%40t-pass", "s:cr@t-pass"]));
        const report = healthyReport();
        report.alembicCurrent = failed(`could not connect with ${url}; password s:cr@t-pass rejected; also s%3Acr%40t-pass`);
        const scrubbed = redactReport(report, secretsOf(url));
        const text = JSON.stringify(scrubbed);
        expect(text).not.toContain("s:cr@t-pass");
        expect(text).not.toContain("s%3Acr%40t-pass");
        expect((scrubbed.alembicCurrent as { error: string }).error).toBe("could not connect with [secret]; password [secret] rejected; also [secret]");
        expect(scrubbed.database).toEqual(report.database);
    });

    it("leaves short passwords alone rather than scrubbing ordinary text", () => {
        expect(secretsOf("postgresql://u:ab@h/d")).toEqual(["postgresql://u:ab@h/d"]);
        expect(secretsOf(undefined)).toEqual([]);
    });

    it("runs alembic and the backfill with read-only sessions, keeping the operator's PGOPTIONS", () => {
        expect(readOnlyPgOptions()).toBe("-c default_transaction_read_only=on -c lock_timeout=2s -c statement_timeout=60s");
        expect(readOnlyPgOptions("-c search_path=app")).toBe("-c search_path=app -c default_transaction_read_only=on -c lock_timeout=2s -c statement_timeout=60s");
    });

    it("checks the backup directory's nearest existing parent", () => {
        const missing = path.join(os.tmpdir(), "no-such-dir-for-probes", "backups");
        expect(nearestExistingDir(missing)).toBe(os.tmpdir());
        const space = backupSpace(missing, 1);
        expect(space).toMatchObject({ backupDir: missing, checkedDir: os.tmpdir(), expectedDumpBytes: 1, enough: true });
        expect(space.freeBytes).toBeGreaterThan(0);
        expect(backupSpace(missing).enough).toBeUndefined();
    });

    it("the probe command carries no URL or password, and never fails the invoke", () => {
        const config = parseRolloutConfig({ dbUrl: url, appDir: "/srv/protea", backupDir: "/backups" }, "/home/op", "/");
        const line = probeCommand(config);
        expect(line).toContain(" probe --app-dir /srv/protea --alembic 'poetry run alembic' --backfill ");
        expect(line).toContain("--backup-dir /backups --columns ");
        expect(line).not.toContain("s:cr@t-pass");
        expect(line).not.toContain("s%3Acr%40t-pass");
        expect(line.endsWith(" || true")).toBe(true);
    });

    it("an update (not a preview) runs no probe", () => {
        const config = parseRolloutConfig({ dbUrl: url }, "/home/op", "/");
        expect(previewReport(config, url)).toBeUndefined();
    });
});
