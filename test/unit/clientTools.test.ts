import { describe, expect, it } from "vitest";
import { clientTool } from "../../lib/clientTools";

const database = { host: "db", port: 5432, user: "protea", password: "pw", database: "protea" };
const docker = { access: "docker-exec" as const, container: "protea-postgres-1", dbUser: "protea", dbName: "protea", database };
const url = { ...docker, access: "url" as const };

describe("client tools", () => {
    it("run inside the container with docker-exec, in the runbook's shape", () => {
        expect(clientTool(docker, "pg_dump", ["-F", "c"])).toEqual({ program: "docker", args: ["exec", "protea-postgres-1", "pg_dump", "-U", "protea", "-d", "protea", "-F", "c"], env: {} });
        expect(clientTool(docker, "psql", ["-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"]).args).toEqual(["exec", "protea-postgres-1", "psql", "-U", "protea", "-d", "protea", "-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"]);
        // `docker exec -i … pg_restore … < "$out"`: the dump comes from the host on stdin.
        expect(clientTool(docker, "pg_restore", [], true).args).toEqual(["exec", "-i", "protea-postgres-1", "pg_restore", "-U", "protea", "-d", "protea"]);
        expect(clientTool(docker, "pg_restore", ["--list"], true).args).toEqual(["exec", "-i", "protea-postgres-1", "pg_restore", "--list"]);
    });

    it("run on the host with url access, the password only in PGPASSWORD", () => {
        const dump = clientTool(url, "pg_dump", ["-F", "c"]);
        expect(dump).toEqual({ program: "pg_dump", args: ["-F", "c"], env: { PGHOST: "db", PGPORT: "5432", PGUSER: "protea", PGPASSWORD: "pw", PGDATABASE: "protea" } });
        expect(clientTool(url, "pg_restore", ["-j", "2", "/d.dump"]).args).toEqual(["-d", "protea", "-j", "2", "/d.dump"]);
        expect(JSON.stringify(clientTool(url, "pg_restore", ["--list", "/d.dump"]).args)).not.toContain("pw");
    });
});
