/**
 * Another alembic application than PROTEA, configured through stack config
 * alone: test/fixtures/billing (psycopg2 only, its URL in
 * BILLING_DATABASE_URL, its own tables, version table and backfill output),
 * copied to a folder whose name has spaces and quotes, against a role whose
 * password holds every URL and shell metacharacter. The whole life of a
 * rollout, the off-plan paths included: preview, up, Ctrl-C mid-backfill,
 * recover, up, a rollback that fails on a dependent view (all or nothing),
 * the rollback, a re-apply, the restore with `public` granted to a role whose
 * name needs quotes. The password shows in no output, log, state or process.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { countRows, columnExists, indexExists } from "./helpers/db";
import { newTestStack, npmRun, TestStack } from "./helpers/engine";
import { BILLING_DIR, BILLING_EXPECTED_HEAD, BILLING_NEW_COLUMNS, BILLING_PYTHON, BILLING_TARGET, BILLING_VERSION_TABLE, billingAlembic, billingSeed, billingStackConfig, shQuote } from "./helpers/billingFixture";
import { expectSuccess, PROJECT_ROOT } from "./helpers/fixture";
import { DatabaseSnapshot, snapshotDatabase, watchProcessList } from "./helpers/snapshots";
import { readProcessTable } from "../../lib/runbook/interruptedRun/processTable";

// Every URL and shell metacharacter, a space, a backtick and a backslash.
const PASSWORD = `p@ss:/?#%&'"$; x\`\\y`;
const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll }, { user: "billing_owner", database: "billing", password: PASSWORD });

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "billing-rollout-"));
const appDir = path.join(workDir, `app's "billing" dir`);
const backupDir = path.join(workDir, `back ups 'of' "billing"`);
const markers = path.join(workDir, "writers log");
const outputs: string[] = [];
let stack: TestStack;

const dbUrl = () => `postgresql+psycopg2://billing_owner:${encodeURIComponent(PASSWORD).replace(/'/g, "%27")}@127.0.0.1:${cluster().port}/billing?application_name=billing%20app`;
const run = async (script: string, args: string[], env: Record<string, string> = {}) => {
    const result = await npmRun(PROJECT_ROOT, script, args, { ...stack.env, ...env });
    outputs.push(result.output);
    return result;
};
const snapshot = () => snapshotDatabase(cluster().clientConfig, { ...cluster().libpqEnv });
const query = async <T>(sql: string, asSuperuser = false): Promise<T[]> => {
    // The superuser on this test's database (its own config names another).
    const client = new Client(asSuperuser ? { ...cluster().superuserClientConfig, database: cluster().database } : cluster().clientConfig);
    await client.connect();
    try {
        return (await client.query(sql)).rows as T[];
    } finally {
        await client.end();
    }
};
const filled = async () => (await countRows(cluster().clientConfig, "invoice", "digest_v2 IS NOT NULL")) + (await countRows(cluster().clientConfig, "ledger_entry", "digest_v2 IS NOT NULL"));
const schema = async () => ({
    invoice: await columnExists(cluster().clientConfig, "invoice", "digest_v2"),
    ledger: await columnExists(cluster().clientConfig, "ledger_entry", "digest_v2"),
    invoiceIndex: await indexExists(cluster().clientConfig, "ix_invoice_digest_v2"),
    ledgerIndex: await indexExists(cluster().clientConfig, "ix_ledger_entry_digest_v2"),
});
const PRESENT = { invoice: true, ledger: true, invoiceIndex: true, ledgerIndex: true };
const ABSENT = { invoice: false, ledger: false, invoiceIndex: false, ledgerIndex: false };
const version = async () => (await query<{ version_num: string }>("SELECT version_num FROM billing_alembic_version")).map((r) => r.version_num).join();
/** The marker lines the writers' commands appended, in order. */
const writerEvents = () => (fs.existsSync(markers) ? fs.readFileSync(markers, "utf8").trim().split("\n") : []);
/** Processes of this test's copy of the application still running (a backfill left behind): run in it, or naming it. */
const applicationProcesses = () => readProcessTable().filter((p) => (p.cwd ?? "").startsWith(appDir) || p.argv.some((a) => a.includes(appDir)));

/** `npm run pulumi -- up` as an operator runs it in a terminal: its own process group, which Ctrl-C signals as a whole. */
function upInTerminal(env: Record<string, string>) {
    const child = spawn("npm", ["run", "--silent", "pulumi", "--", "up", "--stack", stack.stack.name, "--yes", "--skip-preview"], {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...stack.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    let ended = false;
    const done = new Promise<number>((resolve) => child.on("close", (code, signal) => {
        ended = true;
        resolve(code ?? (signal ? 128 : 1));
    }));
    return { interrupt: (signal: NodeJS.Signals) => process.kill(-child.pid!, signal), done, ended: () => ended, output: () => output };
}

/**
 * `npm run pulumi -- up` interrupted by `signal` once `ready()` holds, then what every interruption must leave: a non-zero
 * exit, `npm run recover` named on the last line, the writers paused and resumed once, no process of the application.
 */
async function interruptUp(env: Record<string, string>, ready: () => Promise<boolean>, signal: "SIGINT" | "SIGHUP"): Promise<string> {
    const events = writerEvents().length;
    const up = upInTerminal(env);
    for (let i = 0; i < 600 && !up.ended() && !(await ready().catch(() => false)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(up.ended(), up.output()).toBe(false);
    up.interrupt(signal);
    const code = await up.done;
    outputs.push(up.output());
    expect(code, up.output()).not.toBe(0);
    expect(up.output().trimEnd().split("\n").pop()).toContain(`npm run recover -- --stack ${stack.stack.name}`);
    expect(writerEvents().slice(events)).toEqual(["pause", "resume"]);
    expect(applicationProcesses()).toEqual([]);
    return up.output();
}

beforeAll(async () => {
    fs.cpSync(BILLING_DIR, appDir, { recursive: true });
    const url = dbUrl();
    expectSuccess(await billingAlembic(url, "upgrade", BILLING_EXPECTED_HEAD), "alembic upgrade to the expected head");
    expectSuccess(await billingSeed(url, 300, 3), "seed");
    const log = shQuote(markers);
    stack = await newTestStack(
        PROJECT_ROOT,
        billingStackConfig(url, backupDir, {
            appDir,
            batchSize: "40",
            // The writers' commands get the application's variable too: they record that they saw the URL, never its value.
            pauseWriters: `test -n "$BILLING_DATABASE_URL" && test -z "$PROTEA_DB_URL" && echo pause >> ${log}`,
            resumeWriters: `test -n "$BILLING_DATABASE_URL" && echo resume >> ${log}`,
        }),
    );
}, 300_000);

afterAll(async () => {
    await stack?.remove().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
});

/** The project's tool by hand, as a stored command runs it: the URL in PROTEA_DB_URL, the application's variable named. */
const rolloutTool = (args: string[]) =>
    run("rollout", [...args, "--columns", JSON.stringify(BILLING_NEW_COLUMNS)], {
        PROTEA_DB_URL: dbUrl(),
        PROTEA_APP_DB_URL_VARIABLE: "BILLING_DATABASE_URL",
    });

describe("a second alembic application, configured through stack config alone", () => {
    let beforeUp: DatabaseSnapshot;
    let beforeReapply: DatabaseSnapshot;

    it("the upgrade's own gate stops a wrong expected head, before any DDL, naming both revisions", async () => {
        const before = await snapshot();
        const python = shQuote(BILLING_PYTHON);
        const migrate = await rolloutTool(["migrate", "--direction", "up", "--stack", `rollout/${stack.stack.name}`, "--alembic", `${python} -m alembic`, "--expected-head", "c0ffee000001", "--target-revision", BILLING_TARGET, "--app-dir", appDir, "--version-table", BILLING_VERSION_TABLE]);
        expect(migrate.code).toBe(1);
        expect(migrate.output).toContain("c0ffee000001");
        expect(migrate.output).toContain(BILLING_EXPECTED_HEAD);
        expect(await snapshot()).toEqual(before);
    });

    it("preview: nothing changes, and the dry run speaks of this application's tables and revisions", async () => {
        beforeUp = await snapshot();
        const preview = await run("pulumi", ["preview", "--stack", stack.stack.name], { BILLING_PRINT_URL: "1" });
        expect(preview.code, preview.output).toBe(0);
        expect(preview.output).toContain(`alembic current: ${BILLING_EXPECTED_HEAD}`);
        expect(preview.output).toContain("invoice 300 rows");
        expect(await snapshot()).toEqual(beforeUp);
        expect(fs.existsSync(backupDir)).toBe(false);
    });

    it("Ctrl-C mid-backfill: the writers are resumed, no backfill is left running, and the output ends naming recover", async () => {
        // Interrupt once some batches are committed, well before all 1,200 rows are.
        const output = await interruptUp({ BILLING_BACKFILL_SLEEP_PER_BATCH: "0.5", BILLING_PRINT_URL: "1" }, async () => (await filled()) >= 80, "SIGINT");
        // By the guard (the project's provider kills the step outright), or by the step itself once it saw its shell gone (upstream's): once.
        expect(output).toMatch(/up: (the writers were resumed|the stopped step resumed the writers itself)/);
        // Committed batches stay; the rest is still to do.
        expect(await filled()).toBeGreaterThan(0);
        expect(await filled()).toBeLessThan(1200);
        // The verification gate, reached with rows left NULL, names them and fails.
        const gate = await rolloutTool(["verify-backfill", "--parity-sample", "5"]);
        expect(gate.code).toBe(1);
        expect(gate.output).toMatch(/verification gate: (invoice|ledger_entry) has \d+ rows with digest_v2 IS NULL/);
    });

    it("recover, then up: the rollout finishes, every row filled, the writers paused and resumed once more", async () => {
        const recover = await run("recover", ["--stack", stack.stack.name]);
        expect(recover.code, recover.output).toBe(0);
        // The guard's resume is in the state: recover, from any checkout, does not run it again.
        expect(recover.output).not.toContain("resuming the writers");
        expect(writerEvents()).toEqual(["pause", "resume"]);
        const up = await run("pulumi", ["up", "--stack", stack.stack.name, "--yes", "--skip-preview"], { BILLING_PRINT_URL: "1" });
        expect(up.code, up.output).toBe(0);
        expect(await schema()).toEqual(PRESENT);
        expect(await filled()).toBe(1200);
        expect(await version()).toBe(BILLING_TARGET);
        expect(writerEvents().slice(-2)).toEqual(["pause", "resume"]);
        // Quiet when nothing is wrong: no warning the operator need not act on, in the up or the preview after it.
        expect(up.output).not.toMatch(/^\s*warning:/im);
        const preview = await run("pulumi", ["preview", "--stack", stack.stack.name]);
        expect(preview.code, preview.output).toBe(0);
        expect(preview.output).not.toMatch(/^\s*warning:|pending migration SQL|lock safety/im);
        expect(preview.output).toMatch(/warnings\s*: \[\]/);
        expect(preview.output).toContain("the migration is applied, by this stack");
    });

    it("a rollback that fails on a dependent view changes nothing (all or nothing); without the view it rolls back", async () => {
        await query("CREATE VIEW invoice_digest AS SELECT id, digest_v2 FROM invoice");
        const refused = await run("rollback", ["--stack", stack.stack.name, "--yes"], { BILLING_PRINT_URL: "1" });
        expect(refused.code).not.toBe(0);
        expect(refused.output).toMatch(/invoice_digest/);
        expect(await schema()).toEqual(PRESENT);
        expect(await version()).toBe(BILLING_TARGET);
        expect(await filled()).toBe(1200);

        await query("DROP VIEW invoice_digest");
        const rollback = await run("rollback", ["--stack", stack.stack.name, "--yes"], { BILLING_PRINT_URL: "1" });
        expect(rollback.code, rollback.output).toBe(0);
        expect(await schema()).toEqual(ABSENT);
        expect(await version()).toBe(BILLING_EXPECTED_HEAD);
    });

    it("Ctrl-C while the writers are being paused: the state has no pause yet, the run's own record says it started, and the writers are resumed", async () => {
        const log = shQuote(markers);
        await stack.stack.setConfig("rollout:pauseWriters", { value: `echo pause >> ${log} && sleep 60` });
        try {
            const paused = writerEvents().length + 1;
            const output = await interruptUp({}, async () => writerEvents().length >= paused, "SIGINT");
            expect(output).toContain("up: this run was interrupted while pausing or resuming the writers; resuming them");
            expect(await schema()).toEqual(ABSENT);
        } finally {
            await stack.stack.setConfig("rollout:pauseWriters", { value: `test -n "$BILLING_DATABASE_URL" && test -z "$PROTEA_DB_URL" && echo pause >> ${log}` });
        }
    });

    it("re-apply, its terminal closed mid-backfill (SIGHUP): writers resumed, nothing left running; recover, up, then restore with public granted to \"Ops Team\"", async () => {
        // CREATE, which PUBLIC does not have: the restore must put this grant back itself.
        await query(`CREATE ROLE "Ops Team"; GRANT USAGE, CREATE ON SCHEMA public TO "Ops Team"`, true);
        expect((await query<{ ok: boolean }>(`SELECT has_schema_privilege('Ops Team', 'public', 'CREATE') AS ok`))[0].ok).toBe(true);
        beforeReapply = await snapshot();
        const output = await interruptUp({ BILLING_BACKFILL_SLEEP_PER_BATCH: "0.5" }, async () => (await filled()) >= 80, "SIGHUP");
        expect(output).toContain("up: the update was interrupted (SIGHUP)");
        const recover = await run("recover", ["--stack", stack.stack.name]);
        expect(recover.code, recover.output).toBe(0);

        const up = await run("pulumi", ["up", "--stack", stack.stack.name, "--yes", "--skip-preview"]);
        expect(up.code, up.output).toBe(0);
        expect(await schema()).toEqual(PRESENT);
        expect(await filled()).toBe(1200);

        // An application whose alembic fails quoting its URL: the data is back all the same, and the last line says what is left.
        const stampFails = await run("restore", ["--stack", stack.stack.name, "--confirm", "billing"], { BILLING_ALEMBIC_FAIL: "1" });
        expect(stampFails.code).toBe(1);
        expect(stampFails.output).toContain("cannot configure alembic for postgresql+psycopg2://[redacted]@");
        expect(stampFails.output.trimEnd().split("\n").pop()).toMatch(/^the data is restored from .*\(committed\); `.* stamp c0ffee000002` failed \(exit 1\); alembic's version table already reads c0ffee000002/);
        expect(await snapshot()).toEqual(beforeReapply);
        expect((await stack.stack.outputs()).restoredFrom?.value.path).toMatch(/pre-billing-.*\.dump$/);

        const restore = await run("restore", ["--stack", stack.stack.name, "--confirm", "billing"], { BILLING_PRINT_URL: "1" });
        expect(restore.code, restore.output).toBe(0);
        expect(await snapshot()).toEqual(beforeReapply);
        expect(await version()).toBe(BILLING_EXPECTED_HEAD);
        expect((await query<{ ok: boolean }>(`SELECT has_schema_privilege('Ops Team', 'public', 'CREATE') AS ok`))[0].ok).toBe(true);
    });

    it("the password is in no output, log, state, backup folder file or process argument", async () => {
        const watch = watchProcessList(PASSWORD);
        const preview = await run("pulumi", ["preview", "--stack", stack.stack.name], { BILLING_PRINT_URL: "1" });
        const { hits, samples } = watch();
        expect(preview.code, preview.output).toBe(0);
        expect(samples).toBeGreaterThan(0);
        expect(hits).toEqual([]);
        const exported = JSON.stringify(await stack.stack.exportStack());
        const logs = fs.readdirSync(backupDir).filter((f) => f.endsWith(".log")).map((f) => fs.readFileSync(path.join(backupDir, f), "utf8"));
        expect(logs.length).toBeGreaterThan(0);
        const everything = [...outputs, exported, ...logs].join("\n");
        // The application did print it (BILLING_PRINT_URL=1): it reached the product and went no further.
        expect(everything).toContain("connecting to postgresql+psycopg2://[redacted]@");
        for (const form of [PASSWORD, encodeURIComponent(PASSWORD), "p%40ss%3A%2F%3F%23%25%26%27%22%24%3B x%60%5Cy"]) expect(everything).not.toContain(form);
    });
});
