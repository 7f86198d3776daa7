/**
 * Where PostgreSQL's client tools run. `docker-exec` runs them inside the
 * database container, as the runbook does (`docker exec protea-postgres-1
 * pg_dump -U protea …`), so their version matches the server's; `url` runs the
 * host's tools with libpq settings from the environment (the password in
 * PGPASSWORD, never in an argument).
 */
import type { PgAccess } from "../config/config";
import { libpqEnvironment, LibpqSettings } from "../config/databaseUrl";
import { run, tail } from "../process/processes";

export interface ClientToolTarget {
    access: PgAccess;
    container: string;
    dbUser: string;
    dbName: string;
    database: LibpqSettings;
}

export interface ToolInvocation {
    program: string;
    args: string[];
    /** Extra environment (libpq settings in `url` mode). */
    env: Record<string, string>;
}

/**
 * `tool` with `args`, run against the target database. `stdinFromHost` adds
 * `-i` for docker exec, so a file on the host can be fed to the tool.
 */
export function clientTool(target: ClientToolTarget, tool: "pg_dump" | "pg_restore" | "psql", args: string[], stdinFromHost = false): ToolInvocation {
    if (target.access === "docker-exec") {
        const dbArgs = tool === "pg_restore" && args.includes("--list") ? [] : ["-U", target.dbUser, "-d", target.dbName];
        return {
            program: "docker",
            args: ["exec", ...(stdinFromHost ? ["-i"] : []), target.container, tool, ...dbArgs, ...args],
            env: {},
        };
    }
    const env = libpqEnvironment(target.database);
    const dbArgs = tool === "pg_restore" && !args.includes("--list") ? ["-d", target.database.database] : [];
    return { program: tool, args: [...dbArgs, ...args], env };
}

/** The client tools the rollout needs, checked against the server before anything changes. */
export interface ClientToolsVerdict {
    ok: boolean;
    message: string;
    /** Major versions, when they could be read. */
    pgDumpMajor?: number;
    pgRestoreMajor?: number;
    serverMajor?: number;
}

/** The major version in `pg_dump (PostgreSQL) 15.18 (Debian …)`. */
export function majorOfToolVersion(output: string): number | undefined {
    const match = /\(PostgreSQL\) (\d+)/.exec(output);
    return match ? Number(match[1]) : undefined;
}

/** The major version in `server_version_num` (170012 → 17). */
export const majorOfVersionNum = (versionNum: number) => Math.floor(versionNum / 10000);

/** What a failed `docker` call means for the operator, from its stderr. */
export function explainDockerFailure(stderr: string, container: string): string {
    const said = stderr.trim().split("\n").slice(-1)[0] ?? "";
    if (/permission denied/i.test(stderr) && /docker(\.sock| daemon socket)/i.test(stderr)) {
        return `permission denied on the Docker socket (${said}): run the rollout as root or as a member of the docker group`;
    }
    if (/Cannot connect to the Docker daemon|Is the docker daemon running|error during connect/i.test(stderr)) {
        return `the Docker engine does not answer (${said}): start it, or point DOCKER_HOST at it`;
    }
    if (/No such (container|object)/i.test(stderr)) {
        return `rollout:container is "${container}", but Docker has no container of that name: set rollout:container to the database's container (docker ps lists them)`;
    }
    if (/client version .* is too (old|new)|Maximum supported API version/i.test(stderr)) {
        return `the docker client and the Docker engine do not speak the same API (${said}): use a docker client of the engine's version`;
    }
    return `docker failed: ${said}`;
}

function hasProgram(error: unknown): boolean {
    return !(error instanceof Error && /ENOENT/.test(error.message));
}

/**
 * Checks that the rollout's client tools can reach the server and are at
 * least its major version (pg_dump refuses a newer server; pg_restore cannot
 * read a newer dump format). `docker-exec`: the container exists, runs, and
 * its pg_dump/pg_restore/psql answer as rollout:dbUser on rollout:dbName.
 * `url`: the host's pg_dump/pg_restore against `serverVersionNum`, which the
 * caller read over its own connection. Read-only. A missing tool is a
 * verdict; any other failure to start one (permissions, a broken PATH) throws.
 */
/**
 * What to change when psql inside the container could not log in. A socket
 * that asks for a password is not a wrong user or database: the tools inside
 * the container never get one (it would sit in an argument or the container's
 * environment).
 */
export function containerLoginFix(psqlError: string): string {
    return /no password supplied|password authentication failed/.test(psqlError)
        ? `docker-exec needs a login without a password on the container's local socket for rollout:dbUser (pg_hba.conf "local … trust" or "peer", as the official image sets up), or set rollout:pgAccess to url`
        : "check rollout:dbUser and rollout:dbName";
}

/** What keeps docker-exec from reaching rollout:container (no docker client, no such container, not running), or undefined when it runs. */
export async function containerProblem(c: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
    let inspect;
    try {
        inspect = await run("docker", ["inspect", "--type", "container", "--format", "{{.State.Status}}", c], { env });
    } catch (error) {
        if (hasProgram(error)) throw error;
        return `rollout:pgAccess is docker-exec, but the docker client is not installed (not on PATH): install it (Debian: apt-get install docker.io), or set rollout:pgAccess to url`;
    }
    if (inspect.code !== 0) return explainDockerFailure(inspect.stderr, c);
    const status = inspect.stdout.trim();
    return status === "running" ? undefined : `rollout:container "${c}" exists but is ${status}, not running: start it (docker start ${c}) before the rollout`;
}

export async function checkClientTools(target: ClientToolTarget, env: NodeJS.ProcessEnv, serverVersionNum?: number): Promise<ClientToolsVerdict> {
    const runTool = (program: string, args: string[]) => run(program, args, { env });
    const versionOf = async (program: string, args: string[]) => {
        const out = await runTool(program, args);
        return out.code === 0 ? majorOfToolVersion(out.stdout) : undefined;
    };
    let pgDumpMajor: number | undefined;
    let pgRestoreMajor: number | undefined;
    let serverMajor = serverVersionNum === undefined ? undefined : majorOfVersionNum(serverVersionNum);
    let where: string;
    let fix: string;
    if (target.access === "docker-exec") {
        const c = target.container;
        const problem = await containerProblem(c, env);
        if (problem) return { ok: false, message: problem };
        const exec = (tool: string, ...args: string[]) => runTool("docker", ["exec", c, tool, ...args]);
        const [dump, restore, server] = await Promise.all([
            exec("pg_dump", "--version"),
            exec("pg_restore", "--version"),
            exec("psql", "-X", "-tA", "-U", target.dbUser, "-d", target.dbName, "-c", "SHOW server_version_num"),
        ]);
        if (dump.code !== 0 || restore.code !== 0) {
            return { ok: false, message: `container ${c} has no working pg_dump/pg_restore (${tail(dump.stderr || restore.stderr, 1)}): rollout:container must be the PostgreSQL server's container` };
        }
        if (server.code !== 0) {
            const why = tail(server.stderr, 1);
            return { ok: false, message: `in container ${c}, psql as rollout:dbUser "${target.dbUser}" on rollout:dbName "${target.dbName}" failed: ${why}: ${containerLoginFix(why)}` };
        }
        pgDumpMajor = majorOfToolVersion(dump.stdout);
        pgRestoreMajor = majorOfToolVersion(restore.stdout);
        serverMajor = majorOfVersionNum(Number(server.stdout.trim()));
        where = `in container ${c}`;
        fix = `use a container whose client tools match its server, or set rollout:pgAccess to url with PostgreSQL ${serverMajor}'s client tools on this host`;
    } else {
        try {
            [pgDumpMajor, pgRestoreMajor] = await Promise.all([versionOf("pg_dump", ["--version"]), versionOf("pg_restore", ["--version"])]);
        } catch (error) {
            if (hasProgram(error)) throw error;
            return { ok: false, message: `rollout:pgAccess is url, but pg_dump/pg_restore are not installed on this host: install PostgreSQL's client tools (Debian: postgresql-client), or set rollout:pgAccess to docker-exec` };
        }
        where = "on this host";
        fix = `install PostgreSQL ${serverMajor}'s client tools on this host (Debian: postgresql-client-${serverMajor}), or set rollout:pgAccess to docker-exec to run the server container's own`;
    }
    const versions = { pgDumpMajor, pgRestoreMajor, serverMajor };
    if (pgDumpMajor === undefined || pgRestoreMajor === undefined) return { ok: false, ...versions, message: `pg_dump/pg_restore ${where} did not report a version` };
    if (serverMajor === undefined) return { ok: true, ...versions, message: `pg_dump ${pgDumpMajor} and pg_restore ${pgRestoreMajor} ${where}` };
    const older = [pgDumpMajor < serverMajor ? `pg_dump ${pgDumpMajor}` : "", pgRestoreMajor < serverMajor ? `pg_restore ${pgRestoreMajor}` : ""].filter(Boolean);
    if (older.length > 0) {
        return { ok: false, ...versions, message: `${older.join(" and ")} ${where} ${older.length > 1 ? "are" : "is"} older than the server (PostgreSQL ${serverMajor}), so the backup or the restore would fail: ${fix}` };
    }
    return { ok: true, ...versions, message: `pg_dump ${pgDumpMajor} and pg_restore ${pgRestoreMajor} ${where} can back up and restore PostgreSQL ${serverMajor}` };
}
