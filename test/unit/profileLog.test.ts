import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { processLabel } from "../../lib/process/profileLog";

describe("the profile log's labels (bench/profile.ts)", () => {
    it("name the program and its subcommand, never further arguments", () => {
        expect(processLabel("/bin/sh", ["-c", "cd '/srv/app' && .venv/bin/python -m alembic current"])).toBe("alembic current");
        expect(processLabel("/bin/sh", ["-c", "cd /x && PGOPTIONS='-c lock_timeout=2s' poetry run alembic upgrade a3c1d8e2f4b6"])).toBe("alembic upgrade");
        expect(processLabel("/bin/sh", ["-c", "cd /x && python3 scripts/backfill.py --dry-run --token s3cr3t"])).toBe("backfill.py --dry-run");
        expect(processLabel("/usr/lib/postgresql/15/bin/pg_dump", ["-F", "c", "-f", "/secret/path.dump"])).toBe("pg_dump -F");
        expect(processLabel("docker", ["exec", "-e", "PGPASSWORD", "protea-postgres-1", "pg_dump"])).toBe("docker exec");
    });

    it("write nothing unless PROTEA_PROFILE_LOG is set, and one JSON line per child when it is", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-profile-"));
        try {
            const log = path.join(dir, "profile.jsonl");
            const script = `require("ts-node").register({ transpileOnly: true }); require(${JSON.stringify(path.resolve(__dirname, "../../lib/process/processes.ts"))}).run("true", []).then(() => {});`;
            expect(spawnSync(process.execPath, ["-e", script], { env: { ...process.env, PROTEA_PROFILE_LOG: "" } }).status).toBe(0);
            expect(fs.existsSync(log)).toBe(false);
            expect(spawnSync(process.execPath, ["-e", script], { env: { ...process.env, PROTEA_PROFILE_LOG: log } }).status).toBe(0);
            const lines = fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
            expect(lines).toHaveLength(1);
            expect(lines[0]).toMatchObject({ what: "true" });
            expect(typeof lines[0].ms).toBe("number");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
