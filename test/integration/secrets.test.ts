/**
 * Secrets and connection strings as operators meet them: the command
 * provider behaving as upstream's (no redaction, no secret marking of its
 * own: PROTEA_COMMAND_PROVIDER_AS_UPSTREAM=1), a backfill that prints the
 * database URL with its password in PROTEA's own format, the password kept
 * out of Pulumi entirely with rollout:dbPasswordFile, and URLs that reach
 * the server over a Unix socket or with sslmode.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { countRows } from "./helpers/db";
import { newTestStack, npmRun as runNpmScript, TestStack } from "./helpers/engine";
import { alembic, EXPECTED_HEAD, expectSuccess, fixtureStackConfig, PROJECT_ROOT, seedSample } from "./helpers/fixture";
import { watchProcessList } from "./helpers/snapshots";

process.env.PYTHONDONTWRITEBYTECODE = "1";
// What every operator with internet access gets: a provider that redacts nothing and marks nothing secret by itself.
process.env.PROTEA_COMMAND_PROVIDER_AS_UPSTREAM = "1";
// The application's backfill as it really prints: `db = <url with the password>`, one line per row in a dry run.
process.env.PROTEA_BACKFILL_OUTPUT = "protea";

const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll });
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-secrets-"));
const stacks: TestStack[] = [];

afterAll(async () => {
    delete process.env.PROTEA_COMMAND_PROVIDER_AS_UPSTREAM;
    delete process.env.PROTEA_BACKFILL_OUTPUT;
    for (const s of stacks.reverse()) await s.remove().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
});

beforeAll(async () => {
    expectSuccess(await alembic(cluster().sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
    expectSuccess(await seedSample(cluster().sqlalchemyUrl, ["--datasets", "30", "--reranker-models", "120"]), "seed");
});

let counter = 0;
async function createStack(dbUrl: string, overrides: Record<string, string> = {}) {
    const backupDir = path.join(workDir, `backups-${++counter}`);
    const testStack = await newTestStack(PROJECT_ROOT, fixtureStackConfig(dbUrl, backupDir, { batchSize: "25", ...overrides }));
    stacks.push(testStack);
    return { ...testStack, backupDir };
}

/** Every file under `dir`, read as text, that contains `secret`. */
function filesHolding(dir: string, secret: string): string[] {
    const hits: string[] = [];
    const walk = (d: string) => {
        for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
            const full = path.join(d, entry.name);
            if (entry.isDirectory()) walk(full);
            else if (fs.readFileSync(full).includes(secret)) hits.push(full);
        }
    };
    walk(dir);
    return hits;
}

const backendDir = (s: TestStack) => s.env.PULUMI_BACKEND_URL.replace(/^file:\/\//, "");

describe("with the provider behaving as upstream's and a backfill that prints the URL", () => {
    it("the password is in no engine output, no exported state, no backend file, no step log and no process's arguments", async () => {
        const password = cluster().password;
        const s = await createStack(cluster().sqlalchemyUrl);
        const output: string[] = [];
        const onOutput = (line: string) => output.push(line);
        const watch = watchProcessList(password);
        const up = await s.stack.up({ onOutput });
        expect(up.summary.result).toBe("succeeded");
        // Counts read from PROTEA's `summary:` line, and the product's own from the database.
        const datasets = await countRows(cluster().clientConfig, "dataset");
        const models = await countRows(cluster().clientConfig, "reranker_model");
        expect(up.outputs.backfillApplied.value.reported).toEqual({ dataset: { updated: datasets, skipped: 0 }, reranker_model: { updated: models, skipped: 0 } });
        expect(up.outputs.backfillDryRun.value.reported.dataset).toEqual({ updated: datasets, skipped: 0 });
        expect(up.outputs.backfillApplied.value.database.reranker_model.written).toBe(models);
        // The dry run's one line per row stays out of Pulumi: a summary there, all of it in the log file.
        const dryRunLog = up.outputs.backfillDryRun.value.logFile as string;
        expect(fs.readFileSync(dryRunLog, "utf8").split("\n").filter((l) => l.includes("dry-run  id=")).length).toBe(datasets + models);
        expect(fs.statSync(dryRunLog).mode & 0o777).toBe(0o600);
        expect(output.join("").split("\n").filter((l) => l.includes("dry-run  id=")).length).toBeLessThanOrEqual(30);
        expect(fs.readFileSync(dryRunLog, "utf8")).toContain("db = postgresql+psycopg://[redacted]@");

        expect((await s.stack.up({ onOutput })).summary.result).toBe("succeeded");
        // What the provider runs: every stored command line, secrets shown, holds no password.
        const state = await s.stack.exportStack();
        const commands = state.deployment.resources.filter((r: { type: string }) => r.type === "command:local:Command");
        expect(commands.length).toBeGreaterThanOrEqual(6);
        for (const c of commands) {
            const lines = ["create", "update", "delete"].map((k) => c.inputs[k]).map((v) => (typeof v === "object" && v?.plaintext ? JSON.parse(v.plaintext) : v));
            expect(JSON.stringify(lines), c.urn).not.toContain(password);
        }
        const rollback = await runNpmScript(PROJECT_ROOT, "rollback", ["--stack", s.stack.name, "--yes"], s.env);
        output.push(rollback.output);
        expect(rollback.code, rollback.output).toBe(0);
        const processes = watch();

        expect(output.join("")).not.toContain(password);
        // Checks that the new columns are absent ask the catalog: no error in the server's log.
        expect(fs.readFileSync(cluster().logFile, "utf8")).not.toMatch(/column "schema_sha_v2" does not exist/);
        expect(filesHolding(backendDir(s), password)).toEqual([]);
        expect(filesHolding(s.backupDir, password)).toEqual([]);
        expect(processes.hits).toEqual([]);
        const exported = await new Promise<string>((resolve) => {
            const child = spawn("pulumi", ["stack", "export", "--stack", s.stack.name], { cwd: PROJECT_ROOT, env: { ...process.env, ...s.env } });
            let text = "";
            child.stdout.on("data", (d) => (text += d));
            child.on("close", () => resolve(text));
        });
        expect(exported).toContain("ciphertext");
        expect(exported).not.toContain(password);
    });
});

describe("rollout:dbPasswordFile", () => {
    it("keeps the password out of Pulumi entirely: not even -v=9 engine logs hold it", async () => {
        const password = cluster().password;
        const passwordFile = path.join(workDir, "db-password");
        fs.writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
        const urlWithoutPassword = cluster().sqlalchemyUrl.replace(`:${encodeURIComponent(password)}@`, "@");
        expect(urlWithoutPassword).not.toContain(password);
        const s = await createStack(urlWithoutPassword, { dbPasswordFile: passwordFile });
        const logDir = fs.mkdtempSync(path.join(workDir, "engine-logs-"));
        // -v=9 with --logtostderr prints to stderr; without it, the engine writes log files (in TMPDIR).
        const run = (args: string[], toStderr = true) =>
            new Promise<{ code: number; text: string }>((resolve) => {
                const child = spawn("pulumi", [...args, "--stack", s.stack.name, "-v=9", ...(toStderr ? ["--logtostderr"] : []), "--logflow"], {
                    cwd: PROJECT_ROOT,
                    env: { ...process.env, ...s.env, TMPDIR: logDir },
                });
                let text = "";
                child.stdout.on("data", (d) => (text += d));
                child.stderr.on("data", (d) => (text += d));
                child.on("close", (code) => resolve({ code: code ?? 1, text }));
            });
        const up = await run(["up", "--yes", "--skip-preview", "--non-interactive"]);
        expect(up.code, up.text.slice(-3000)).toBe(0);
        expect(up.text.length).toBeGreaterThan(10_000);
        expect(up.text).not.toContain(password);
        expect((await run(["preview", "--non-interactive"], false)).code).toBe(0);
        expect(fs.readdirSync(logDir).filter((f) => f.startsWith("pulumi")).length).toBeGreaterThan(0);
        expect(filesHolding(logDir, password)).toEqual([]);
        expect(filesHolding(backendDir(s), password)).toEqual([]);
        expect(await countRows(cluster().clientConfig, "dataset", "schema_sha_v2 IS NULL")).toBe(0);
        const rollback = await runNpmScript(PROJECT_ROOT, "rollback", ["--stack", s.stack.name, "--yes"], s.env);
        expect(rollback.code, rollback.output).toBe(0);

        fs.chmodSync(passwordFile, 0o644);
        const loose = await run(["preview", "--non-interactive"]);
        expect(loose.code).not.toBe(0);
        expect(loose.text).toContain("rollout:dbPasswordFile");
        expect(loose.text).toContain("readable by others");
        fs.chmodSync(passwordFile, 0o600);
    });
});

describe("connection strings as libpq understands them", () => {
    const cases = [
        { name: "a Unix-socket URL (?host=<socket dir>)", url: () => `postgresql+psycopg://${cluster().user}:${encodeURIComponent(cluster().password)}@/${cluster().database}?host=${cluster().socketDir}&port=${cluster().port}` },
        { name: "an sslmode=disable URL", url: () => `${cluster().sqlalchemyUrl}?sslmode=disable` },
    ];
    for (const c of cases) {
        it(`${c.name} works end to end: up, then the rollback`, async () => {
            const s = await createStack(c.url());
            const up = await s.stack.up();
            expect(up.summary.result).toBe("succeeded");
            expect(await countRows(cluster().clientConfig, "reranker_model", "schema_sha_v2 IS NULL")).toBe(0);
            const rollback = await runNpmScript(PROJECT_ROOT, "rollback", ["--stack", s.stack.name, "--yes"], s.env);
            expect(rollback.code, rollback.output).toBe(0);
        });
    }
});
