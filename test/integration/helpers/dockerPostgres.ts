/**
 * A PostgreSQL container like production's, for the docker-exec rollout:
 * pgvector on PostgreSQL 17 (the closest Debian has to production's
 * pgvector/pgvector:pg16), named like production's, with the application's
 * role and database, its port published on 127.0.0.1 only.
 *
 * No registry is reachable here, so the image is built from Debian's packages
 * (debootstrap, then `docker import`), once per recipe: its tag carries the
 * recipe's hash. The entrypoint follows the official image's conventions
 * (POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE), so the password is a
 * mounted file and never part of the container's configuration.
 *
 * Every step is idempotent and prints a progress line: install docker.io and
 * debootstrap (root), start dockerd when none answers (and stop it again),
 * build the image when missing, run the container.
 */
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ClientConfig } from "pg";
import { Client } from "pg";
import { findFreePort } from "../../../lib/process/freePort";
import type { SuiteHooks } from "./temporaryCluster";
import { run, RunResult, tail } from "../../../lib/process/processes";

const say = (line: string) => process.stderr.write(`docker-postgres: ${line}\n`);

const MIRROR = process.env.PROTEA_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
const SUITE = "trixie";
const PACKAGES = ["postgresql-17", "postgresql-17-pgvector"];
const PG_BIN = "/usr/lib/postgresql/17/bin";

/**
 * Initialises $PGDATA on first start, as the official image does (UTF8: a
 * minbase system has no locale, and SQL_ASCII would hand the application
 * bytes), then runs the server as `postgres`.
 */
const ENTRYPOINT = `#!/bin/sh
set -eu
: "\${PGDATA:=/var/lib/postgresql/data}"
: "\${POSTGRES_USER:=postgres}"
: "\${POSTGRES_DB:=$POSTGRES_USER}"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 0700 "$PGDATA"
  pwfile=$(mktemp) && chown postgres "$pwfile"
  if [ -n "\${POSTGRES_PASSWORD_FILE:-}" ]; then cat "$POSTGRES_PASSWORD_FILE" > "$pwfile"
  else printf '%s' "\${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD}" > "$pwfile"; fi
  as_postgres initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  # Local socket only while the database is created: clients wait for the real start.
  as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  [ "$POSTGRES_DB" = postgres ] || psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \\"$POSTGRES_DB\\""
  as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
# \`docker run IMAGE postgres -c …\` (the official image's form, as the drill uses it) passes settings.
[ "\${1:-}" != postgres ] || shift
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*' "$@"
`;

const IMAGE_CHANGES = [
    `ENV PATH=${PG_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    "ENV PGDATA=/var/lib/postgresql/data",
    "ENV LANG=C.UTF-8",
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
    "EXPOSE 5432",
];

/** The image's tag: a new recipe builds a new image, the same one reuses it. */
export const IMAGE = `protea-test/postgres-pgvector:17-${createHash("sha256").update(JSON.stringify({ SUITE, PACKAGES, ENTRYPOINT, IMAGE_CHANGES })).digest("hex").slice(0, 12)}`;

async function must(what: string, program: string, args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
    const result = await run(program, args, { env: env ?? process.env });
    if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${tail(result.stderr || result.stdout)}`);
    return result;
}

const onPath = (program: string) => run("/bin/sh", ["-c", `command -v ${program}`]).then((r) => r.code === 0);

/** docker.io (dockerd, containerd, runc, a client) and debootstrap, from Debian, when missing. */
export async function ensureDockerInstalled(): Promise<void> {
    const missing: string[] = [];
    for (const [program, pkg] of [["dockerd", "docker.io"], ["docker", "docker.io"], ["debootstrap", "debootstrap"]]) {
        if (!(await onPath(program)) && !missing.includes(pkg)) missing.push(pkg);
    }
    if (missing.length === 0) return;
    if (process.getuid?.() !== 0) throw new Error(`the docker-exec tests need ${missing.join(" and ")}: install them as root (apt-get install ${missing.join(" ")}), then run the tests again`);
    say(`installing ${missing.join(", ")} from Debian (apt-get)`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    await must("apt-get update", "apt-get", ["update", "-qq"], env);
    await must(`apt-get install ${missing.join(" ")}`, "apt-get", ["install", "-y", "-qq", ...missing], env);
}

const dockerAnswers = () => run("docker", ["info", "--format", "{{.ServerVersion}}"]).then((r) => (r.code === 0 ? r.stdout.trim() : undefined), () => undefined);

export interface DockerEngine {
    version: string;
    /** Stops the engine if this process started it. */
    stop(): Promise<void>;
}

/** The running Docker engine, or one started here (`dockerd --iptables=false`; this machine has no iptables for it). */
export async function startDockerEngine(): Promise<DockerEngine> {
    const running = await dockerAnswers();
    if (running) {
        say(`Docker engine ${running} answers; using it`);
        return { version: running, stop: async () => undefined };
    }
    const log = path.join(os.tmpdir(), `protea-test-dockerd-${process.pid}.log`);
    say(`starting dockerd --iptables=false (log: ${log})`);
    const out = fs.openSync(log, "w");
    const dockerd: ChildProcess = spawn("dockerd", ["--iptables=false"], { detached: true, stdio: ["ignore", out, out] });
    dockerd.unref();
    fs.closeSync(out);
    let exited = false;
    dockerd.on("exit", () => (exited = true));
    dockerd.on("error", () => (exited = true));
    for (const started = Date.now(); Date.now() - started < 60_000; ) {
        const version = await dockerAnswers();
        if (version) {
            say(`Docker engine ${version} started (pid ${dockerd.pid})`);
            return {
                version,
                stop: async () => {
                    say(`stopping the dockerd this run started (pid ${dockerd.pid})`);
                    dockerd.kill("SIGTERM");
                    for (const stopping = Date.now(); !exited && Date.now() - stopping < 30_000; ) await new Promise((r) => setTimeout(r, 200));
                    if (!exited) dockerd.kill("SIGKILL");
                    fs.rmSync(log, { force: true });
                },
            };
        }
        if (exited) break;
        await new Promise((r) => setTimeout(r, 500));
    }
    dockerd.kill("SIGKILL");
    throw new Error(`the Docker engine could not be started (dockerd --iptables=false); its log ends:\n${tail(fs.readFileSync(log, "utf8"))}`);
}

/** Builds {@link IMAGE} from Debian's packages unless the engine has it already. */
export async function ensurePgvectorImage(): Promise<string> {
    if ((await run("docker", ["image", "inspect", IMAGE])).code === 0) {
        say(`image ${IMAGE} is built; reusing it`);
        return IMAGE;
    }
    const root = fs.mkdtempSync(path.join("/var/tmp", "protea-test-image-"));
    try {
        say(`building ${IMAGE}: debootstrap ${SUITE} with ${PACKAGES.join(", ")} from ${MIRROR} (about a minute and 700 MB, once)`);
        await must("debootstrap", "debootstrap", ["--variant=minbase", `--include=${PACKAGES.join(",")}`, SUITE, root, MIRROR]);
        fs.writeFileSync(path.join(root, "usr/local/bin/docker-entrypoint.sh"), ENTRYPOINT, { mode: 0o755 });
        say(`importing ${IMAGE} into the Docker engine`);
        const changes = IMAGE_CHANGES.flatMap((c) => ["--change", c]);
        await must("docker import", "/bin/sh", ["-c", 'root=$1; shift; tar -C "$root" -c . | docker import "$@"', "sh", root, ...changes, "-", IMAGE]);
        return IMAGE;
    } finally {
        fs.rmSync(root, { recursive: true, force: true });
    }
}

export interface DockerPostgres {
    container: string;
    image: string;
    port: number;
    user: string;
    database: string;
    password: string;
    /** As the application gets it (`postgresql+psycopg://…`, password inside): environment only. */
    sqlalchemyUrl: string;
    clientConfig: ClientConfig;
    /** `docker exec <container> <tool> -U <user> -d <database>`, the runbook's shape. */
    exec(tool: "pg_dump" | "psql" | "pg_restore", args: string[]): string[];
    /** Stops and removes the container and its password file. */
    remove(): Promise<void>;
}

/** The label that marks a container as this helper's, so a stale one may be replaced; another of the same name never is. */
const LABEL = "protea.test-container";

async function removeStale(name: string): Promise<void> {
    const inspect = await run("docker", ["inspect", "--type", "container", "--format", `{{index .Config.Labels "${LABEL}"}}`, name]);
    if (inspect.code !== 0) return;
    if (inspect.stdout.trim() !== "1") throw new Error(`a container named ${name} exists that these tests did not make: remove or rename it, then run the tests again`);
    say(`removing the stale test container ${name}`);
    await must(`docker rm -f ${name}`, "docker", ["rm", "-f", "-v", name]);
}

export async function runDockerPostgres(options: { name: string; image: string; user?: string; database?: string }): Promise<DockerPostgres> {
    const { name, image } = options;
    const user = options.user ?? "protea";
    const database = options.database ?? "protea";
    await removeStale(name);
    const port = await findFreePort();
    const password = randomBytes(18).toString("base64url");
    const secrets = fs.mkdtempSync(path.join(os.tmpdir(), "protea-test-container-"));
    const passwordFile = path.join(secrets, "postgres-password");
    fs.writeFileSync(passwordFile, password, { mode: 0o600 });
    say(`running ${name} from ${image} on 127.0.0.1:${port}`);
    await must("docker run", "docker", [
        "run", "-d", "--name", name, "--label", `${LABEL}=1`,
        "-e", `POSTGRES_USER=${user}`, "-e", `POSTGRES_DB=${database}`,
        "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password",
        "-v", `${passwordFile}:/run/secrets/postgres-password:ro`,
        "-p", `127.0.0.1:${port}:5432`,
        image,
    ]);
    const clientConfig: ClientConfig = { host: "127.0.0.1", port, user, password, database };
    const remove = async () => {
        await run("docker", ["rm", "-f", "-v", name]);
        fs.rmSync(secrets, { recursive: true, force: true });
    };
    // The entrypoint's first start listens on its socket only: a TCP login means the real server is up.
    let lastError = "";
    for (const started = Date.now(); Date.now() - started < 90_000; await new Promise((r) => setTimeout(r, 500))) {
        const client = new Client(clientConfig);
        try {
            await client.connect();
            await client.query("SELECT 1");
            say(`${name} answers on 127.0.0.1:${port}`);
            return {
                container: name,
                image,
                port,
                user,
                database,
                password,
                sqlalchemyUrl: `postgresql+psycopg://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
                clientConfig,
                exec: (tool, args) => ["docker", "exec", name, tool, "-U", user, "-d", database, ...args],
                remove,
            };
        } catch (error) {
            lastError = (error as Error).message;
        } finally {
            await client.end().catch(() => undefined);
        }
    }
    const logs = await run("docker", ["logs", "--tail", "20", name]);
    await remove();
    throw new Error(`container ${name} did not accept a login on 127.0.0.1:${port} within 90 s (${lastError}); its log ends:\n${logs.stdout}${logs.stderr}`);
}

/**
 * beforeAll: install, start the engine, build the image, run the container;
 * afterAll: remove the container, stop the engine this run started. Returns
 * an accessor for the container.
 */
export function useDockerPostgres(hooks: SuiteHooks, name = "protea-postgres-1"): () => DockerPostgres {
    let engine: DockerEngine | undefined;
    let container: DockerPostgres | undefined;
    hooks.beforeAll(async () => {
        await ensureDockerInstalled();
        engine = await startDockerEngine();
        container = await runDockerPostgres({ name, image: await ensurePgvectorImage() });
    }, 600_000);
    hooks.afterAll(async () => {
        await container?.remove();
        await engine?.stop();
    }, 120_000);
    return () => {
        if (!container) throw new Error("the PostgreSQL container is not running (did beforeAll fail? its error says why)");
        return container;
    };
}

/** `docker inspect` of a container, as text (to search for what must not be there). */
export const inspectContainer = (name: string) => execFileSync("docker", ["inspect", name], { encoding: "utf8" });

// `npm run pgvector-image`: build the image for a drill where no registry is reachable (README).
if (require.main === module) {
    (async () => {
        await ensureDockerInstalled();
        const engine = await startDockerEngine();
        try {
            process.stdout.write(`${await ensurePgvectorImage()}\n`);
        } finally {
            if (process.argv.includes("--stop-engine")) await engine.stop();
        }
    })().catch((error: Error) => {
        process.stderr.write(`docker-postgres: ${error.message}\n`);
        process.exit(1);
    });
}
