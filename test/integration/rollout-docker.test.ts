/**
 * The prod default for real: `rollout:pgAccess: docker-exec` against a running
 * PostgreSQL container named like production's (pgvector, PostgreSQL 17).
 * pg_dump, pg_restore and psql run through `docker exec`, as the runbook's;
 * alembic and the backfill run on the host against the published port. The
 * application's schema carries what PROTEA's tables have: the `vector`
 * extension, a filled `halfvec` column and an HNSW index on it.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { explainDockerFailure } from "../../lib/postgres/clientTools";
import { columnExists, countRows, queryScalar, withDb } from "./helpers/db";
import { inspectContainer, useDockerPostgres } from "./helpers/dockerPostgres";
import { newTestStack, npmRun as runNpmScript, TestStack } from "./helpers/engine";
import { alembic, alembicCurrent, EXPECTED_HEAD, expectSuccess, fixtureStackConfig, PROJECT_ROOT, seedSample } from "./helpers/fixture";
import { DatabaseSnapshot, filesIn, snapshotDatabase, watchProcessList } from "./helpers/snapshots";

process.env.PYTHONDONTWRITEBYTECODE = "1";

const db = useDockerPostgres({ beforeAll, afterAll });
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-rollout-docker-"));
const backupDir = path.join(workDir, "backups");
const engineOutput: string[] = [];
const onOutput = (out: string) => engineOutput.push(out);
const stacks: TestStack[] = [];
const dumpsIn = (dir: string) => filesIn(dir).filter((f) => f.endsWith(".dump"));

async function createStack(overrides: Record<string, string> = {}): Promise<TestStack> {
    const config = fixtureStackConfig(db().sqlalchemyUrl, backupDir, {
        pgAccess: "docker-exec",
        container: db().container,
        dbUser: db().user,
        dbName: db().database,
        pauseWriters: `touch ${path.join(workDir, "paused")}`,
        resumeWriters: `touch ${path.join(workDir, "resumed")}`,
        ...overrides,
    });
    const testStack = await newTestStack(PROJECT_ROOT, config);
    stacks.push(testStack);
    return testStack;
}

const npmRun = (script: string, args: string[], env: Record<string, string>) => runNpmScript(PROJECT_ROOT, script, args, env);
// The container's pg_dump 17 describes the schema; the host's 15 refuses a newer server.
const snapshot = () => snapshotDatabase(db().clientConfig, {}, db().exec("pg_dump", []));
const migrationColumns = async () => [await columnExists(db().clientConfig, "dataset", "schema_sha_v2"), await columnExists(db().clientConfig, "reranker_model", "schema_sha_v2")];

/** Every embedding as the bytes pgvector sends (halfvec_send), in id order: "byte for byte". */
const embeddingBytes = async () =>
    String(await queryScalar(db().clientConfig, "SELECT md5(string_agg(id || ':' || encode(halfvec_send(embedding), 'hex'), ',' ORDER BY id)) FROM dataset_embedding_halfvec"));

afterAll(async () => {
    for (const s of stacks.reverse()) await s.remove().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
});

/** The stack of the whole rollout; the restore refusal below uses it too. */
let main: TestStack;

describe("the rollout through docker exec, against a pgvector container", () => {
    let beforeRollout: DatabaseSnapshot;
    let embeddingsBefore: string;

    beforeAll(async () => {
        expectSuccess(await alembic(db().sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade to the expected head");
        expectSuccess(await seedSample(db().sqlalchemyUrl), "seed");
        await withDb(db().clientConfig, async (client) => {
            await client.query("CREATE EXTENSION vector");
            await client.query(`CREATE TABLE dataset_embedding_halfvec (
                id serial PRIMARY KEY,
                dataset_id integer NOT NULL REFERENCES dataset (id),
                embedding halfvec(16) NOT NULL)`);
            await client.query(`INSERT INTO dataset_embedding_halfvec (dataset_id, embedding)
                SELECT (SELECT min(id) FROM dataset), (SELECT array_agg(sin(r * 16 + g)::real ORDER BY g) FROM generate_series(1, 16) g)::halfvec(16)
                  FROM generate_series(1, 500) r`);
            await client.query("CREATE INDEX dataset_embedding_halfvec_hnsw ON dataset_embedding_halfvec USING hnsw (embedding halfvec_l2_ops)");
        });
        main = await createStack();
        beforeRollout = await snapshot();
        embeddingsBefore = await embeddingBytes();
        expect(beforeRollout.rowChecksums.dataset_embedding_halfvec).toMatch(/^[0-9a-f]{32}$/);
    });

    it("preview changes nothing and says the container's client tools can back up its server", async () => {
        const output: string[] = [];
        const preview = await main.stack.preview({ onOutput: (o) => output.push(o) });
        engineOutput.push(...output);
        expect(preview.changeSummary.create).toBeGreaterThanOrEqual(15);
        expect(output.join("")).toContain(`client tools: pg_dump 17 and pg_restore 17 in container ${db().container} can back up and restore PostgreSQL 17`);
        expect(await snapshot()).toEqual(beforeRollout);
        expect(dumpsIn(backupDir)).toEqual([]);
    });

    it("up backs up through docker exec pg_dump (on the host, 0600, verified), migrates, backfills and verifies; the password is in no process's arguments", async () => {
        const stopWatching = watchProcessList(db().password);
        const up = await main.stack.up({ onOutput });
        expect(stopWatching().hits).toEqual([]);
        expect(up.summary.result).toBe("succeeded");
        expect(await migrationColumns()).toEqual([true, true]);
        expect(await countRows(db().clientConfig, "dataset", "schema_sha_v2 IS NULL")).toBe(0);
        expect(await countRows(db().clientConfig, "reranker_model", "schema_sha_v2 IS NULL")).toBe(0);

        const dump = up.outputs.backupPath.value as string;
        expect(dumpsIn(backupDir)).toEqual([path.basename(dump)]);
        expect(fs.statSync(dump).mode & 0o777).toBe(0o600);
        expect(fs.readFileSync(`${dump}.sha256`, "utf8")).toContain(up.outputs.backupSha256.value);
        expect(engineOutput.join("")).toContain(`pg_dump -F c of ${db().database} in container ${db().container}`);
        // The dump holds the vector table's data, read by the container's pg_restore from the host's file.
        const listing = execFileSync("docker", ["exec", "-i", db().container, "pg_restore", "--list"], { input: fs.readFileSync(dump), encoding: "utf8" });
        expect(listing).toMatch(/TABLE DATA public dataset_embedding_halfvec /);
        expect(listing).toMatch(/EXTENSION - vector/);
        expect(await embeddingBytes()).toBe(embeddingsBefore);
    });

    it("a second up changes nothing", async () => {
        const up = await main.stack.up({ onOutput });
        expect(Object.keys(up.summary.resourceChanges ?? {})).toEqual(["same"]);
    });

    it("npm run rollback downgrades and keeps the embeddings byte for byte", async () => {
        const rollback = await npmRun("rollback", ["--stack", main.stack.name, "--yes"], main.env);
        engineOutput.push(rollback.output);
        expect(rollback.code, rollback.output).toBe(0);
        expect(await migrationColumns()).toEqual([false, false]);
        expect(await alembicCurrent(db().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
        expect(await embeddingBytes()).toBe(embeddingsBefore);
    });

    it("npm run restore, through docker exec -i pg_restore < dump, returns every table to its pre-rollout checksum", async () => {
        // Put the migration back first, so the restore has something to undo.
        expect((await main.stack.up({ onOutput })).summary.result).toBe("succeeded");
        expect(await migrationColumns()).toEqual([true, true]);
        const restore = await npmRun("restore", ["--stack", main.stack.name, "--dump", dumpsIn(backupDir).map((f) => path.join(backupDir, f))[0], "--confirm", db().database], main.env);
        engineOutput.push(restore.output);
        expect(restore.code, restore.output).toBe(0);
        expect(restore.output).toContain(`pg_dump 17 and pg_restore 17 in container ${db().container}`);
        expect(await snapshot()).toEqual(beforeRollout);
        expect(await embeddingBytes()).toBe(embeddingsBefore);
        expect(await alembicCurrent(db().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
        // The HNSW index came back with the data.
        expect(await queryScalar(db().clientConfig, "SELECT count(*)::int FROM pg_indexes WHERE indexname = 'dataset_embedding_halfvec_hnsw'")).toBe(1);
    });

    it("the password appears in neither docker inspect, the engine's output nor the exported state", async () => {
        const password = db().password;
        expect(inspectContainer(db().container)).toContain("POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password");
        expect(inspectContainer(db().container)).not.toContain(password);
        expect(engineOutput.join("").length).toBeGreaterThan(1000);
        expect(engineOutput.join("")).not.toContain(password);
        const exported = execFileSync("pulumi", ["stack", "export", "--stack", main.stack.name], { cwd: PROJECT_ROOT, env: { ...process.env, ...main.env }, encoding: "utf8" });
        expect(exported).toContain("ciphertext");
        expect(exported).not.toContain(password);
    });
});

describe("what a production operator meets, each stopped before any change and named in the preview", () => {
    /** Preview's warnings, then the up's failure; the database and the backup folder as they were. */
    async function previewAndUp(overrides: Record<string, string>): Promise<{ warnings: string; failure: string }> {
        const before = await snapshot();
        const refusedBackups = path.join(workDir, `refused-${stacks.length}`);
        const stack = await createStack({ ...overrides, backupDir: refusedBackups });
        const output: string[] = [];
        await stack.stack.preview({ onOutput: (o) => output.push(o) });
        const failure = await stack.stack.up({ onOutput }).then(() => "", (err: Error) => err.message);
        expect(await snapshot()).toEqual(before);
        expect(dumpsIn(refusedBackups)).toEqual([]);
        return { warnings: output.join(""), failure };
    }

    it("a wrong container name", async () => {
        const { warnings, failure } = await previewAndUp({ container: "protea-postgres-9" });
        const said = 'rollout:container is "protea-postgres-9", but Docker has no container of that name: set rollout:container';
        expect(warnings).toContain(`the update would stop at the preflight gate: ${said}`);
        expect(failure).toContain(said);
        expect(failure).toContain("nothing changed");
    });

    it("a container that is not running", async () => {
        const stopped = "protea-postgres-stopped";
        execFileSync("docker", ["create", "--name", stopped, "--label", "protea.test-container=1", db().image]);
        try {
            const { warnings, failure } = await previewAndUp({ container: stopped });
            expect(warnings).toContain(`rollout:container "${stopped}" exists but is created, not running: start it (docker start ${stopped})`);
            expect(failure).toContain(`rollout:container "${stopped}" exists but is created, not running`);
            // The database's own container stopped: the up, not only the preview, names the way out.
            const down = await createStack({ container: stopped });
            await down.stack.setConfig("rollout:dbUrl", { value: "postgresql+psycopg://protea:x@127.0.0.1:1/protea", secret: true });
            const upFailure = await down.stack.up({ onOutput }).then(() => "", (err: Error) => err.message);
            expect(upFailure).toContain("the database does not answer at 127.0.0.1:1");
            expect(upFailure).toContain(`start it (docker start ${stopped})`);
        } finally {
            execFileSync("docker", ["rm", "-f", stopped]);
        }
    });

    it("url access with the host's pg_dump older than the server (15 against 17)", async () => {
        const { warnings, failure } = await previewAndUp({ pgAccess: "url" });
        const said = "pg_dump 15 and pg_restore 15 on this host are older than the server (PostgreSQL 17), so the backup or the restore would fail: install PostgreSQL 17's client tools on this host (Debian: postgresql-client-17), or set rollout:pgAccess to docker-exec";
        expect(warnings).toContain(said);
        expect(failure).toContain(said);
    });

    it("a restore with a pg_restore older than the server is refused before anything is dropped", async () => {
        const before = await snapshot();
        await main.stack.setConfig("rollout:pgAccess", { value: "url" });
        try {
            const refused = await npmRun("restore", ["--stack", main.stack.name, "--dump", path.join(backupDir, dumpsIn(backupDir)[0]), "--confirm", db().database], main.env);
            expect(refused.code).not.toBe(0);
            expect(refused.output).toContain("pg_restore 15 on this host are older than the server (PostgreSQL 17)");
            expect(refused.output).not.toContain("not a valid backup");
        } finally {
            await main.stack.setConfig("rollout:pgAccess", { value: "docker-exec" });
        }
        expect(await snapshot()).toEqual(before);
    });

    it("permission denied on the Docker socket, in docker's own words, names the fix", () => {
        // As an unprivileged user, the real client against the real socket.
        const denied = (() => {
            try {
                execFileSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "docker", "inspect", db().container], { encoding: "utf8", stdio: "pipe" });
                return "";
            } catch (error) {
                return String((error as { stderr?: string }).stderr);
            }
        })();
        expect(denied).toMatch(/permission denied/);
        expect(explainDockerFailure(denied, db().container)).toMatch(/^permission denied on the Docker socket .*: run the rollout as root or as a member of the docker group$/);
    });
});
