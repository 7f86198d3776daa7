import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { checkClientTools, clientTool, containerLoginFix, explainDockerFailure, majorOfToolVersion } from "../../lib/postgres/clientTools";

const database = { host: "db", port: 5432, user: "protea", password: "pw", database: "protea" };
const docker = { access: "docker-exec" as const, container: "protea-postgres-1", dbUser: "protea", dbName: "protea", database };
const url = { ...docker, access: "url" as const };

describe("client tools", () => {
    it("a container socket that asks for a password points at the login, not at the user or database names", () => {
        expect(containerLoginFix('psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: fe_sendauth: no password supplied')).toMatch(/login without a password on the container's local socket/);
        expect(containerLoginFix('FATAL:  password authentication failed for user "protea"')).toMatch(/rollout:pgAccess to url/);
        expect(containerLoginFix('FATAL:  role "nobody" does not exist')).toBe("check rollout:dbUser and rollout:dbName");
    });

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

    it("read the major version from a tool's --version and from server_version_num", () => {
        expect(majorOfToolVersion("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n")).toBe(15);
        expect(majorOfToolVersion("pg_restore (PostgreSQL) 17.12\n")).toBe(17);
        expect(majorOfToolVersion("command not found")).toBeUndefined();
    });

    it("say what to do for each way docker fails", () => {
        // docker 20–28's own words.
        expect(explainDockerFailure("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.41/containers/x/json\": dial unix /var/run/docker.sock: connect: permission denied", "x"))
            .toMatch(/^permission denied on the Docker socket .*: run the rollout as root or as a member of the docker group$/);
        expect(explainDockerFailure("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?", "x")).toMatch(/^the Docker engine does not answer/);
        expect(explainDockerFailure("Error: No such container: protea-postgres-9", "protea-postgres-9")).toBe(
            'rollout:container is "protea-postgres-9", but Docker has no container of that name: set rollout:container to the database\'s container (docker ps lists them)',
        );
        expect(explainDockerFailure("Error response from daemon: client version 1.52 is too new. Maximum supported API version is 1.41", "x")).toMatch(/do not speak the same API/);
    });

    it("without docker on PATH, docker-exec access says what to install or which access to choose", async () => {
        const empty = fs.mkdtempSync(path.join(os.tmpdir(), "no-docker-"));
        try {
            const verdict = await checkClientTools(docker, { PATH: empty });
            expect(verdict.ok).toBe(false);
            expect(verdict.message).toContain("the docker client is not installed (not on PATH): install it (Debian: apt-get install docker.io), or set rollout:pgAccess to url");
            const host = await checkClientTools(url, { PATH: empty }, 150004);
            expect(host.message).toContain("pg_dump/pg_restore are not installed on this host");
        } finally {
            fs.rmSync(empty, { recursive: true });
        }
    });

    it("with url access, the host's pg_dump older than the server is refused, naming the client that fixes it", async () => {
        const hostMajor = majorOfToolVersion(execFileSync("pg_dump", ["--version"], { encoding: "utf8" })) as number;
        const same = await checkClientTools(url, process.env, hostMajor * 10000 + 4);
        expect(same).toMatchObject({ ok: true, pgDumpMajor: hostMajor, serverMajor: hostMajor });
        const newer = await checkClientTools(url, process.env, (hostMajor + 2) * 10000 + 4);
        expect(newer.ok).toBe(false);
        expect(newer.message).toBe(
            `pg_dump ${hostMajor} and pg_restore ${hostMajor} on this host are older than the server (PostgreSQL ${hostMajor + 2}), so the backup or the restore would fail: ` +
                `install PostgreSQL ${hostMajor + 2}'s client tools on this host (Debian: postgresql-client-${hostMajor + 2}), or set rollout:pgAccess to docker-exec to run the server container's own`,
        );
    });
});
