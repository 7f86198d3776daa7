/**
 * The rollout's steps, gates and probes, one subcommand each. The Pulumi
 * program's commands call it by name (`protea-rollout …`); an operator can
 * run it by hand (`npm run rollout -- …`) with PROTEA_DB_URL in the
 * environment. Progress goes to stderr; the result is one JSON line on
 * stdout. A failed gate or step exits 1 with the reason.
 *
 * Paths arrive as configured (relative to the project, or "~/…") and are
 * resolved here, at run time, against this checkout: the state never holds
 * a path of the checkout that applied it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { alembicRevisions, currentRevisions, judgeDowngrade, judgeRevisions } from "../lib/runbook/alembic";
import { runAppCommand } from "../lib/runbook/appCommand";
import { installOutputScrubber, secretForms } from "../lib/process/scrub";
import { parseBackfillSummary } from "../lib/runbook/backfillSummary";
import { checkBackupDir, earlierBackups, takeBackup, utcStamp } from "../lib/runbook/backup";
import { checkClientTools, ClientToolTarget } from "../lib/postgres/clientTools";
import { BudgetPolicy, DEFAULT_BACKUP_COMPRESSION, DEFAULT_VERSION_TABLE, NewColumn, parseDuration, parseParityCutover, PgAccess, resolveSetting } from "../lib/config/config";
import { applicationEnvironment, completeDatabaseUrlFromPasswordFile, databaseFromEnvironment, environmentPasswordForms, withDatabase } from "../lib/postgres/database";
import { applyInShortTries, LockBudgetSpent, lockBlockers, LockRetryPolicy } from "../lib/runbook/lockAwareApply";
import { describeParityDrift, parityDrift } from "../lib/runbook/parityDrift";
import { pendingMigrationSql, runProbes } from "../lib/preview/probes";
import { stopAllChildren } from "../lib/process/processes";
import { profileEvent } from "../lib/process/profileLog";
import { PROJECT_ROOT } from "../lib/process/projectRoot";
import { BUDGETED_STEPS, BudgetedStep, readRehearsal, seconds, sideBySide, STEP_TITLES, stepBudget } from "../lib/runbook/rehearsal";
import { holdStepLocks } from "../lib/runbook/rolloutLock";
import { noteWritersEvent } from "../lib/runbook/interruptedRun/runProcesses";
import { columnStates, nullCounts, parityReport, schemaMismatches } from "../lib/postgres/schemaChecks";
import { quote } from "../lib/process/shell";
import { cliCommandsHelp, CliSpec, cliSpec, readCli } from "../lib/process/cliOptions";

class GateFailure extends Error {}

type Values = Record<string, string | boolean | undefined>;

const say = (line: string) => process.stderr.write(`${line}\n`);
const result = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
const DEFAULT_TIMEOUT = "4h";
const [DEFAULT_LOCK_TIMEOUT, DEFAULT_LOCK_RETRIES, DEFAULT_LOCK_BUDGET] = ["2s", "10", "2min"];

/** The flags several subcommands take; a table takes one as it is, or with its own `required`/description. */
const FLAG = {
    "app-dir": { type: "string", value: "DIR", required: true, description: "the application's checkout, where alembic and the backfill run" },
    alembic: { type: "string", value: "CMD", required: true, description: "the command that runs alembic in --app-dir" },
    "expected-head": { type: "string", value: "REV", required: true, description: "the revision the database is at before the migration (rollout:expectedHead)" },
    "target-revision": { type: "string", value: "REV", required: true, description: "the migration's revision (rollout:targetRevision)" },
    "version-table": {
        type: "string",
        value: "T",
        default: DEFAULT_VERSION_TABLE,
        description: "alembic's version table, table or schema.table (rollout:alembicVersionTable): alembic current is read from it, without starting Python",
    },
    columns: { type: "string", value: "JSON", required: true, description: 'the new columns, a JSON list of {"table","column","index","legacyColumn"}' },
    stack: { type: "string", value: "NAME", required: true, description: "the stack as <project>/<stack>, named as the rollout lock's holder" },
    backfill: { type: "string", value: "CMD", required: true, description: "the application's backfill command, run in --app-dir" },
    access: { type: "string", value: "url|docker-exec", description: "where the client tools run: on this host, against PROTEA_DB_URL, or docker exec in --container" },
    container: { type: "string", value: "NAME", default: "protea-postgres-1", description: "docker-exec: the database's container" },
    "db-user": { type: "string", value: "USER", default: "protea", description: "docker-exec: the database user" },
    "db-name": { type: "string", value: "DB", default: "protea", description: "docker-exec: the database" },
    "lock-timeout": { type: "string", value: "D", default: DEFAULT_LOCK_TIMEOUT, description: "lock_timeout of each try; no try starts while a session has held a lock on the tables longer than this" },
    "lock-retries": { type: "string", value: "N", default: DEFAULT_LOCK_RETRIES, description: "tries after the first" },
    "lock-budget": { type: "string", value: "D", default: DEFAULT_LOCK_BUDGET, description: "the time all tries may take; past it, the step fails naming the blockers" },
    "parity-cutover": { type: "string", value: "TIME|ID", description: "rollout:parityCutover: rows after it must have equal legacy and v2 values" },
    "parity-cutover-column": { type: "string", value: "COL", description: "the column compared with --parity-cutover (default created_at for a time, the primary key for an id)" },
    rehearsal: { type: "string", value: "FILE", description: "a drill's report (.json) whose step times set the budgets" },
    "budget-step": {
        type: "string",
        value: "STEP",
        description: `with --rehearsal, one of ${BUDGETED_STEPS.join(", ")}: the step stops past its rehearsal budget (multiple × its time in the drill's report × production's size over the drill's, at least the floor) when that is shorter than --timeout`,
    },
    "budget-multiple": { type: "string", value: "N", default: "3", description: "a budget's multiple of the rehearsed time (rollout:budgetMultiple)" },
    "budget-floor": { type: "string", value: "D", default: "1min", description: "the smallest budget (rollout:budgetFloor)" },
    "resume-writers": { type: "string", value: "CMD", description: "rollout:resumeWriters: when this step fails after the writers were paused, it resumes them with this" },
    "resume-on-failure": { type: "string", value: "true|false", default: "true", description: "false: leave the writers paused when the step fails (rollout:resumeOnFailure)" },
    timeout: { type: "string", value: "D", default: DEFAULT_TIMEOUT, description: "how long the step may run (rollout:stepTimeout)" },
} as const;

const CLIENT_TOOLS = { access: FLAG.access, container: FLAG.container, "db-user": FLAG["db-user"], "db-name": FLAG["db-name"] } as const;
const BUDGET = { rehearsal: FLAG.rehearsal, "budget-step": FLAG["budget-step"], "budget-multiple": FLAG["budget-multiple"], "budget-floor": FLAG["budget-floor"] } as const;
const RESUME = { "resume-writers": FLAG["resume-writers"], "resume-on-failure": FLAG["resume-on-failure"] } as const;
const ALEMBIC = { "app-dir": FLAG["app-dir"], alembic: FLAG.alembic, "expected-head": FLAG["expected-head"], "target-revision": FLAG["target-revision"], "version-table": FLAG["version-table"] } as const;

/** Each subcommand's flags and help (`rollout <command> --help`). */
const SUBCOMMANDS = {
    preflight: cliSpec({
        usage: "rollout preflight",
        description: `the database answers; alembic current = --expected-head and the checkout's
heads include --target-revision; --backup-dir can take a dump; with --access,
the client tools answer and are not older than the server`,
        options: {
            ...ALEMBIC,
            "backup-dir": { type: "string", value: "DIR", description: "check it can take a dump of the database" },
            ...CLIENT_TOOLS,
            access: { ...FLAG.access, description: `${FLAG.access.description}; with it, the client tools are checked` },
            timeout: FLAG.timeout,
        },
    }),
    backup: cliSpec({
        usage: "rollout backup",
        description: `pg_dump -F c to <dir>/<label>-<UTC>.dump, verified with pg_restore --list,
its SHA-256 beside it in <dump>.sha256`,
        options: {
            dir: { type: "string", value: "DIR", required: true, description: "where the dump goes (rollout:backupDir)" },
            label: { type: "string", value: "LABEL", required: true, description: "the dump's file name prefix" },
            ...CLIENT_TOOLS,
            access: { ...FLAG.access, required: true },
            compression: { type: "string", value: "N", default: String(DEFAULT_BACKUP_COMPRESSION), description: "pg_dump -Z: gzip level 0-9 (rollout:backupCompression)" },
            timeout: FLAG.timeout,
            ...BUDGET,
        },
    }),
    migrate: cliSpec({
        usage: "rollout migrate",
        description: `the migration, gated in the same invocation, holding the rollout lock:
up: alembic current = --expected-head, then upgrade, then every column and index
present; down: alembic current = --target-revision, then downgrade, then all
absent; check: the database still has the migration

The DDL runs in short tries: none while a session has held a lock on the tables
longer than --lock-timeout, each try one transaction, backoff with jitter
between tries; it fails naming the blockers once the budget is spent.`,
        options: {
            direction: { type: "string", value: "up|down|check", required: true, description: "upgrade, downgrade, or check the database still has the migration" },
            stack: FLAG.stack,
            ...ALEMBIC,
            columns: FLAG.columns,
            "lock-timeout": FLAG["lock-timeout"],
            "lock-retries": FLAG["lock-retries"],
            "lock-budget": FLAG["lock-budget"],
            timeout: FLAG.timeout,
            ...BUDGET,
            ...RESUME,
        },
    }),
    backfill: cliSpec({
        usage: "rollout backfill",
        description: `the application's backfill (--mode dry-run: read-only session), output
scrubbed and summarised, all of it in a log file in --log-dir; the new columns'
NULL counts before and after, from the database`,
        options: {
            mode: { type: "string", value: "dry-run|apply", required: true, description: "dry-run: the backfill's --dry-run in a read-only session; apply: in batches" },
            stack: FLAG.stack,
            "app-dir": FLAG["app-dir"],
            backfill: FLAG.backfill,
            columns: FLAG.columns,
            "batch-size": { type: "string", value: "N", description: "apply: rows per batch (required with --mode apply)" },
            force: { type: "boolean", description: "pass --force to the backfill" },
            "log-dir": { type: "string", value: "DIR", description: "keep all of the backfill's output in <label>-backfill-<mode>-<UTC>.log in it" },
            label: { type: "string", value: "LABEL", default: "rollout", description: "the log file's prefix" },
            timeout: FLAG.timeout,
            ...BUDGET,
            ...RESUME,
        },
    }),
    writers: cliSpec({
        usage: "rollout writers",
        description: "runs the operator's pause or resume command (rollout:pauseWriters/resumeWriters)",
        options: {
            action: { type: "string", value: "pause|resume", required: true, description: "which of the two it is" },
            command: { type: "string", value: "CMD", required: true, description: "the operator's command, run in the project's folder" },
            timeout: FLAG.timeout,
        },
    }),
    "verify-schema": cliSpec({
        usage: "rollout verify-schema",
        description: "every new column and index is present (or absent)",
        options: {
            expect: { type: "string", value: "present|absent", required: true, description: "what the new columns and indexes must be" },
            columns: FLAG.columns,
            timeout: FLAG.timeout,
        },
    }),
    "verify-backfill": cliSpec({
        usage: "rollout verify-backfill",
        description: `the migration is still there, no NULL left in any new column; parity of the
latest rows

With a cut-over: rows after it whose legacy and v2 values differ fail the gate,
their first ids listed; every count in DIR/parity-<UTC>.json.`,
        options: {
            columns: FLAG.columns,
            "parity-sample": { type: "string", value: "N", required: true, description: "the latest N rows of each table are checked for parity (rollout:paritySample)" },
            stack: { ...FLAG.stack, required: false },
            "parity-cutover": FLAG["parity-cutover"],
            "parity-cutover-column": FLAG["parity-cutover-column"],
            "report-dir": { type: "string", value: "DIR", description: "with --parity-cutover: where parity-<UTC>.json goes" },
            timeout: FLAG.timeout,
            ...RESUME,
        },
    }),
    probe: cliSpec({
        usage: "rollout probe",
        description: `the dry run, read-only: database size, backup room, alembic current/heads and
the gate's verdict, the client tools, pending SQL (alembic --sql) and its
lock-safety reading, the sessions in the migration's way, the backfill's
--dry-run; always exits 0, a failed probe is reported in the JSON`,
        options: {
            ...ALEMBIC,
            backfill: FLAG.backfill,
            "backup-dir": { type: "string", value: "DIR", required: true, description: "where the backup goes: its free room against the database's size" },
            columns: FLAG.columns,
            "lock-timeout": { ...FLAG["lock-timeout"], description: "the migration's lock_timeout: sessions holding locks longer are in its way" },
            ...CLIENT_TOOLS,
            access: { ...FLAG.access, description: `${FLAG.access.description}; with it, the client tools are probed` },
            "parity-cutover": FLAG["parity-cutover"],
            "parity-cutover-column": FLAG["parity-cutover-column"],
            rehearsal: { ...FLAG.rehearsal, description: "a drill's report (.json) to compare with, and whose step times project production's" },
            "rehearsal-size-factor": { type: "string", value: "N", default: "4", description: "warn when the sizes differ by more than this factor (rollout:rehearsalSizeFactor)" },
            "budget-multiple": FLAG["budget-multiple"],
            "budget-floor": FLAG["budget-floor"],
            timeout: FLAG.timeout,
        },
    }),
    "rehearsal-report": cliSpec({
        usage: "rollout rehearsal-report",
        description: `rehearsal and production side by side (<label>-vs-rehearsal-<UTC>.md and
.json in --dir), production's step times as JSON on stdin`,
        options: {
            rehearsal: { ...FLAG.rehearsal, required: true, description: "the drill's report (.json)" },
            dir: { type: "string", value: "DIR", required: true, description: "where the report goes" },
            label: { type: "string", value: "LABEL", required: true, description: "the report's file name prefix" },
            "budget-multiple": FLAG["budget-multiple"],
            "budget-floor": FLAG["budget-floor"],
            timeout: FLAG.timeout,
        },
    }),
};

const HELP = cliCommandsHelp(
    "rollout <command> [options]",
    `The rollout's steps, gates and probes; PROTEA_DB_URL must hold the database
URL. Paths are relative to the project root or "~/…"; durations look like 90s,
30min, 4h. Progress goes to stderr; the result is one JSON line on stdout. A
failed gate or step exits 1 with the reason.

--columns is a JSON list of {"table","column","index","legacyColumn"}.
preflight, migrate and probe read alembic current from alembic's version table,
--version-table T (table or schema.table; rollout:alembicVersionTable, default
${DEFAULT_VERSION_TABLE}), without starting Python; alembic heads and the
upgrade run the --alembic command.

With --rehearsal FILE --budget-step backup|upgrade|backfillDryRun|backfillApply
[--budget-multiple 3 --budget-floor 1min], a step stops past its rehearsal budget
(multiple × its time in the drill's report × production's size over the drill's,
at least the floor) when that is shorter than --timeout.`,
    SUBCOMMANDS,
);

function required(values: Values, name: string): string {
    const value = values[name];
    if (typeof value !== "string" || value === "") throw new GateFailure(`missing --${name}\n\n${HELP}`);
    return value;
}

const optional = (values: Values, name: string): string | undefined => (typeof values[name] === "string" && values[name] !== "" ? (values[name] as string) : undefined);

function columnsOption(values: Values): NewColumn[] {
    return JSON.parse(required(values, "columns")) as NewColumn[];
}

/** A path option, resolved against this checkout at run time. */
const pathOption = (values: Values, name: string) => resolveSetting(required(values, name), PROJECT_ROOT);

/** --lock-timeout per try, --lock-retries, --lock-budget: the lock-aware apply (lib/runbook/lockAwareApply.ts). */
function lockRetryPolicy(values: Values): LockRetryPolicy {
    const lockTimeoutMs = parseDuration(optional(values, "lock-timeout") ?? DEFAULT_LOCK_TIMEOUT);
    const retries = Number(optional(values, "lock-retries") ?? DEFAULT_LOCK_RETRIES);
    const budgetMs = parseDuration(optional(values, "lock-budget") ?? DEFAULT_LOCK_BUDGET);
    if (lockTimeoutMs === undefined || lockTimeoutMs < 1) throw new GateFailure("--lock-timeout must be a duration like 1s or 500ms");
    if (!Number.isInteger(retries) || retries < 0) throw new GateFailure("--lock-retries must be a whole number, 0 or more");
    if (budgetMs === undefined) throw new GateFailure("--lock-budget must be a duration like 2min");
    return { lockTimeoutMs, retries, budgetMs };
}

/** --budget-multiple and --budget-floor: how a rehearsal's times become budgets. */
function budgetPolicyOption(values: Values): BudgetPolicy {
    const floorMs = parseDuration(optional(values, "budget-floor") ?? "1min");
    const multiple = Number(optional(values, "budget-multiple") ?? "3");
    if (floorMs === undefined || !(multiple > 0)) throw new GateFailure("--budget-floor must be a duration and --budget-multiple a positive number");
    return { multiple, floorMs };
}

const databaseBytes = () => withDatabase(databaseFromEnvironment(), async (c) => Number((await c.query("SELECT pg_database_size(current_database()) AS b")).rows[0].b));

/** How long this step may run, and what sets that: rollout:stepTimeout, or its rehearsal budget when that is shorter. */
let stepLimit = { ms: 0, by: "rollout:stepTimeout" };

async function resolveStepLimit(values: Values): Promise<typeof stepLimit> {
    const text = optional(values, "timeout") ?? DEFAULT_TIMEOUT;
    const ms = parseDuration(text);
    if (ms === undefined) throw new GateFailure(`--timeout must look like 90s, 30min or 4h, got "${text}"`);
    const step = optional(values, "budget-step") as BudgetedStep | undefined;
    const byStepTimeout = { ms, by: `rollout:stepTimeout (${seconds(ms)})` };
    if (!step || !optional(values, "rehearsal")) return byStepTimeout;
    if (!BUDGETED_STEPS.includes(step)) throw new GateFailure(`--budget-step must be one of ${BUDGETED_STEPS.join(", ")}`);
    const rehearsal = readRehearsal(pathOption(values, "rehearsal"));
    const budget = stepBudget(rehearsal, step, await databaseBytes(), budgetPolicyOption(values));
    if (!budget || budget.ms >= ms) return byStepTimeout;
    say(`budget: ${STEP_TITLES[step]} may take ${budget.why}`);
    return { ms: budget.ms, by: budget.why };
}

/** The stack as `<project>/<stack>`, and its name alone for messages. */
function stackOption(values: Values): { id: string; name: string } {
    const id = required(values, "stack");
    return { id, name: id.split("/").pop() ?? id };
}

const secrets = () => secretForms(databaseFromEnvironment().password);

/**
 * Runs a step that comes after the writers were paused. When it fails, the
 * writers are resumed (the migration is additive: the old code runs on either
 * schema), unless rollout:resumeOnFailure=false, and the failure says which.
 */
async function afterPause(values: Values, step: () => Promise<void>): Promise<void> {
    try {
        await step();
    } catch (err) {
        const resume = optional(values, "resume-writers");
        if (!resume) throw err;
        const message = (err as Error).message;
        if (values["resume-on-failure"] === "false") {
            throw new GateFailure(`${message}\n\n!!! WRITERS ARE STILL PAUSED (rollout:resumeOnFailure=false). Resume them with: ${resume}  (or \`npm run recover -- --stack ${stackOption(values).name}\`)`);
        }
        say(`resume: the step failed after the writers were paused; resuming them (rollout:resumeOnFailure): ${resume}`);
        const resumed = await runAppCommand({ label: "resume writers", command: resume, cwd: PROJECT_ROOT, env: applicationEnvironment(), secrets: secrets(), timeoutMs: 10 * 60_000 });
        if (resumed.code === 0) noteWritersEvent("writers-resumed");
        const outcome =
            resumed.code === 0
                ? `the writers were resumed (rollout:resumeWriters ran: ${resume})`
                : `!!! resuming the writers FAILED (exit ${resumed.code}); run it by hand: ${resume}\n${resumed.tail}`;
        throw new GateFailure(`${message}\n\n${outcome}`);
    }
}

async function preflight(values: Values): Promise<void> {
    const database = databaseFromEnvironment();
    const { serverVersion, serverVersionNum, databaseBytes, current } = await withDatabase(database, async (client) => {
        const row = (await client.query("SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS num, pg_database_size(current_database()) AS size")).rows[0];
        return { serverVersion: row.v as string, serverVersionNum: Number(row.num), databaseBytes: Number(row.size), current: await currentRevisions(client, versionTable(values)) };
    });
    say(`preflight: database ${database.database} at ${database.host}:${database.port} answers (PostgreSQL ${serverVersion})`);
    if (optional(values, "access")) {
        const tools = await checkClientTools(clientTargetOption(values), process.env, serverVersionNum);
        if (!tools.ok) throw new GateFailure(`preflight gate: ${tools.message}; nothing changed`);
        say(`preflight: ${tools.message}`);
    }
    if (optional(values, "backup-dir")) {
        // At the fast compression levels a custom-format dump is about the database's size (as the preview says).
        const backupDir = pathOption(values, "backup-dir");
        checkBackupDir(backupDir, databaseBytes);
        say(`preflight: ${backupDir} can take the dump`);
    }
    const appDir = pathOption(values, "app-dir");
    const alembic = required(values, "alembic");
    const heads = await alembicRevisions(alembic, appDir, "heads", applicationEnvironment());
    const verdict = judgeRevisions(current, heads, required(values, "expected-head"), required(values, "target-revision"));
    say(`preflight: ${verdict.message}`);
    if (!verdict.ok) throw new GateFailure(`preflight gate: ${verdict.message}`);
    result({ serverVersion, current: verdict.current, heads: verdict.heads });
}

async function verifySchema(values: Values): Promise<void> {
    const expect = required(values, "expect");
    if (expect !== "present" && expect !== "absent") throw new GateFailure("--expect must be present or absent");
    const states = await withDatabase(databaseFromEnvironment(), (client) => columnStates(client, columnsOption(values)));
    const problems = schemaMismatches(states, expect);
    if (problems.length > 0) throw new GateFailure(`schema check: expected every new column and index ${expect}, but ${problems.join("; ")}`);
    say(`schema check: ${states.map((s) => `${s.table}.${s.column} + ${s.index}`).join(", ")} ${expect}`);
    result({ expect, states });
}

/** alembic's version table (rollout:alembicVersionTable), where the gates read `alembic current`. */
function versionTable(values: Values): string {
    return optional(values, "version-table") ?? DEFAULT_VERSION_TABLE;
}

/** Where the client tools run (--access, --container, --db-user, --db-name). */
function clientTargetOption(values: Values): ClientToolTarget {
    const access = required(values, "access") as PgAccess;
    if (access !== "url" && access !== "docker-exec") throw new GateFailure("--access must be url or docker-exec");
    return {
        access,
        database: access === "url" ? databaseFromEnvironment() : { host: "", port: 0, user: "", database: "" },
        container: String(values.container ?? "protea-postgres-1"),
        dbUser: String(values["db-user"] ?? "protea"),
        dbName: String(values["db-name"] ?? "protea"),
    };
}

async function backup(values: Values): Promise<void> {
    const target = clientTargetOption(values);
    const compressionText = optional(values, "compression") ?? String(DEFAULT_BACKUP_COMPRESSION);
    if (!/^[0-9]$/.test(compressionText)) throw new GateFailure(`--compression (rollout:backupCompression) must be a gzip level for pg_dump -Z, a whole number from 0 to 9, got "${compressionText}"`);
    const limit = stepLimit.ms;
    const timer = setTimeout(() => {
        say(`backup: past ${stepLimit.by}; stopping pg_dump, no backup was kept`);
        stopAllChildren();
    }, limit);
    try {
        // On an update, the provider passes the previous result: the dumps of earlier applies stay listed.
        result(await takeBackup(target, pathOption(values, "dir"), required(values, "label"), say, earlierBackups(process.env.PULUMI_COMMAND_STDOUT), Number(compressionText)));
    } finally {
        clearTimeout(timer);
    }
}

/** The migration's facts as this database has them: alembic's revision and the new columns' state. */
async function migrationState(values: Values) {
    const appDir = pathOption(values, "app-dir");
    const alembic = required(values, "alembic");
    const columns = columnsOption(values);
    const { current, states } = await withDatabase(databaseFromEnvironment(), async (client) => ({
        current: await currentRevisions(client, versionTable(values)),
        states: await columnStates(client, columns),
    }));
    return { appDir, alembic, columns, current, states };
}

async function migrate(values: Values): Promise<void> {
    const direction = required(values, "direction");
    const expectedHead = required(values, "expected-head");
    const targetRevision = required(values, "target-revision");
    const stack = stackOption(values);
    if (direction === "check") return migrationCheck(values, stack.name, targetRevision);
    if (direction !== "up" && direction !== "down") throw new GateFailure("--direction must be up, down or check");
    const database = databaseFromEnvironment();
    const lock = await holdStepLocks(database, stack.id, direction === "up" ? "upgrade" : "downgrade");
    try {
        const appDir = pathOption(values, "app-dir");
        const alembic = required(values, "alembic");
        const columns = columnsOption(values);
        // The tables the pending SQL touches (offline `--sql`, parsed), read beside the gate's alembic calls: the sessions in their way are the blockers.
        const sqlTables =
            direction === "up"
                ? pendingMigrationSql({ appDir, alembic, expectedHead, targetRevision }, process.env)
                      .then(async (pending) => (await import("../lib/preview/lockSafety")).tablesInSql(pending.sql))
                      .catch((err: Error) => (say(`upgrade: the pending SQL could not be read (${err.message.split("\n")[0]}); watching the new columns' tables only`), []))
                : Promise.resolve([]);
        const [current, heads] = await Promise.all([
            withDatabase(database, (client) => currentRevisions(client, versionTable(values))),
            direction === "up" ? alembicRevisions(alembic, appDir, "heads", applicationEnvironment()) : Promise.resolve([]),
        ]);
        let to: string;
        if (direction === "up") {
            const verdict = judgeRevisions(current, heads, expectedHead, targetRevision);
            say(`upgrade gate: ${verdict.message}`);
            if (!verdict.ok) throw new GateFailure(`upgrade gate: ${verdict.message}; nothing was changed`);
            to = targetRevision;
        } else {
            const verdict = judgeDowngrade(current, expectedHead, targetRevision);
            say(`downgrade gate: ${verdict.message}`);
            if (!verdict.ok) throw new GateFailure(`downgrade gate: ${verdict.message}`);
            if (verdict.alreadyDone) {
                const left = schemaMismatches(await columnStates(lock.client, columns), "absent");
                if (left.length > 0) throw new GateFailure(`downgrade gate: alembic is at ${expectedHead} but ${left.join("; ")}: the schema does not match its revision; nothing was changed. Reconcile by hand`);
                result({ direction, millis: 0, revision: expectedHead, alreadyDone: true });
                return;
            }
            to = expectedHead;
        }
        const policy = lockRetryPolicy(values);
        // A DDL statement that cannot get its lock in time fails instead of queueing every writer behind it; the apply tries again later.
        const pgOptions = [process.env.PGOPTIONS, `-c lock_timeout=${policy.lockTimeoutMs}ms`].filter(Boolean).join(" ");
        const what = `alembic ${direction === "up" ? "upgrade" : "downgrade"} ${to}`;
        const tables = [...new Set([...columns.map((c) => c.table), ...(await sqlTables)])];
        const deadline = Date.now() + stepLimit.ms;
        let run: Awaited<ReturnType<typeof runAppCommand>>;
        try {
            ({ outcome: run } = await applyInShortTries({
                policy,
                what,
                log: say,
                blockers: () => lockBlockers(lock.client, tables, policy.lockTimeoutMs / 1000),
                attempt: () =>
                    runAppCommand({
                        label: `alembic ${direction === "up" ? "upgrade" : "downgrade"}`,
                        command: `${alembic} ${direction === "up" ? "upgrade" : "downgrade"} ${quote(to)}`,
                        cwd: appDir,
                        env: applicationEnvironment(process.env, { PGOPTIONS: pgOptions }),
                        secrets: secrets(),
                        timeoutMs: Math.max(1000, deadline - Date.now()),
                        timeoutName: stepLimit.by,
                    }),
            }));
        } catch (error) {
            if (error instanceof LockBudgetSpent) throw new GateFailure(error.message);
            throw error;
        }
        if (run.code !== 0) {
            const why = run.timedOut ? `stopped past ${stepLimit.by}` : `exit ${run.code}`;
            throw new GateFailure(`${what} failed (${why}); its transaction rolled back:\n${run.tail}`);
        }
        const problems = schemaMismatches(await columnStates(lock.client, columns), direction === "up" ? "present" : "absent");
        if (problems.length > 0) throw new GateFailure(`schema check after ${direction === "up" ? "the upgrade" : "the downgrade"}: ${problems.join("; ")}`);
        say(`schema check: every new column and index ${direction === "up" ? "present" : "absent"}`);
        say(`step ${direction === "up" ? "upgrade" : "downgrade"} took ${run.millis} ms`);
        result({ direction, millis: run.millis, revision: to });
    } finally {
        await lock.release();
    }
}

/** The state says the migration is applied: the database must agree before anything else runs. */
async function migrationCheck(values: Values, stackName: string, targetRevision: string): Promise<void> {
    const { current, states } = await migrationState(values);
    const missing = schemaMismatches(states, "present");
    const revisionOk = current.length === 1 && current[0] === targetRevision;
    if (revisionOk && missing.length === 0) {
        say(`migration check: alembic current = ${targetRevision}; every new column and index present`);
        result({ direction: "check", revision: targetRevision });
        return;
    }
    const seen = [`alembic current is ${current.join(", ") || "(none)"}`, ...missing].join("; ");
    throw new GateFailure(
        `drift: this stack's state holds the migration to ${targetRevision}, but the database does not: ${seen}. It was changed outside this stack; nothing was changed now. ` +
            `To apply it again: \`npm run recover -- --stack ${stackName}\` (makes the state match the database), then \`pulumi up\` (fresh backup, gates, migration)`,
    );
}

async function backfill(values: Values): Promise<void> {
    const mode = required(values, "mode");
    if (mode !== "dry-run" && mode !== "apply") throw new GateFailure("--mode must be dry-run or apply");
    const stack = stackOption(values);
    const database = databaseFromEnvironment();
    const columns = columnsOption(values);
    const lock = mode === "apply" ? await holdStepLocks(database, stack.id, "backfill") : undefined;
    try {
        const facts = async () => withDatabase(database, (client) => nullCounts(client, columns));
        const missing = schemaMismatches(await withDatabase(database, (client) => columnStates(client, columns)), "present");
        if (missing.length > 0) {
            throw new GateFailure(`backfill: ${missing.join("; ")}: the migration is not in the database (changed outside this stack?); nothing was run. \`npm run recover -- --stack ${stack.name}\``);
        }
        const before = await facts();
        const force = values.force === true ? " --force" : "";
        const args = mode === "dry-run" ? `--dry-run${force}` : `--batch-size ${Number(required(values, "batch-size"))}${force}`;
        const logDir = optional(values, "log-dir") ? pathOption(values, "log-dir") : undefined;
        if (logDir) fs.mkdirSync(logDir, { recursive: true, mode: 0o700 });
        const logFile = logDir ? path.join(logDir, `${optional(values, "label") ?? "rollout"}-backfill-${mode}-${utcStamp()}.log`) : undefined;
        // The dry run's session refuses writes, whatever the script does.
        const pgOptions = mode === "dry-run" ? [process.env.PGOPTIONS, "-c default_transaction_read_only=on"].filter(Boolean).join(" ") : process.env.PGOPTIONS;
        const run = await runAppCommand({
            label: `backfill ${mode}`,
            command: `${required(values, "backfill")} ${args}`,
            cwd: pathOption(values, "app-dir"),
            env: applicationEnvironment(process.env, pgOptions ? { PGOPTIONS: pgOptions } : {}),
            secrets: secrets(),
            timeoutMs: stepLimit.ms,
            timeoutName: stepLimit.by,
            logFile,
        });
        const after = await facts();
        const database_ = Object.fromEntries(
            after.map((a) => {
                const b = before.find((x) => x.table === a.table && x.column === a.column);
                return [a.table, { rows: a.rows, nullsBefore: b?.nulls ?? a.nulls, nullsAfter: a.nulls, written: (b?.nulls ?? a.nulls) - a.nulls }];
            }),
        );
        if (run.code !== 0) {
            const why = run.timedOut ? `stopped past ${stepLimit.by}` : `exit ${run.code}`;
            const written = Object.entries(database_).map(([t, f]) => `${t} ${f.written} rows written, ${f.nullsAfter} NULL left`).join("; ");
            throw new GateFailure(`backfill ${mode} failed (${why}); committed batches stay and the next \`pulumi up\` resumes (${written}):\n${run.tail}`);
        }
        const reported = parseBackfillSummary(run.stdout);
        say(`step backfill-${mode} took ${run.millis} ms`);
        result({ mode, reported: Object.keys(reported).length > 0 ? reported : "not reported", database: database_, logFile: logFile ?? null, lines: run.lines, millis: run.millis });
    } finally {
        await lock?.release();
    }
}

async function writers(values: Values): Promise<void> {
    const action = required(values, "action");
    if (action !== "pause" && action !== "resume") throw new GateFailure("--action must be pause or resume");
    const command = required(values, "command");
    // Before the command: a pause stopped half-way may have paused some writers.
    if (action === "pause") noteWritersEvent("writers-pause-started");
    const run = await runAppCommand({ label: `${action} writers`, command, cwd: PROJECT_ROOT, env: applicationEnvironment(), secrets: process.env.PROTEA_DB_URL ? secrets() : [], timeoutMs: stepLimit.ms });
    if (run.code !== 0) throw new GateFailure(`${action} writers (rollout:${action}Writers) failed (exit ${run.code}):\n${run.tail}`);
    if (action === "resume") noteWritersEvent("writers-resumed");
    result({ action, millis: run.millis });
}

async function verifyBackfill(values: Values): Promise<void> {
    const columns = columnsOption(values);
    const sample = Number(required(values, "parity-sample"));
    const parsed = parseParityCutover(optional(values, "parity-cutover"), optional(values, "parity-cutover-column"));
    if (parsed.problem) throw new GateFailure(parsed.problem);
    const cutover = parsed.cutover;
    const { missing, counts, parity, drift } = await withDatabase(databaseFromEnvironment(), async (client) => {
        const missing = schemaMismatches(await columnStates(client, columns), "present");
        if (missing.length > 0) return { missing, counts: [], parity: [], drift: [] };
        const drift = cutover ? await parityDrift(client, columns, cutover) : [];
        return { missing, counts: await nullCounts(client, columns), parity: await parityReport(client, columns, sample), drift };
    });
    if (missing.length > 0) {
        const stack = optional(values, "stack") ? stackOption(values).name : "<name>";
        throw new GateFailure(`verification gate: ${missing.join("; ")}: the database no longer has the migration this stack applied (changed outside this stack). \`npm run recover -- --stack ${stack}\`, then \`pulumi up\``);
    }
    const left = counts.filter((c) => c.nulls > 0);
    for (const c of counts) say(`verification: ${c.table}.${c.column}: ${c.nulls} NULL of ${c.rows} rows`);
    for (const p of parity) say(`verification: parity ${p.table}: ${p.matching} of the latest ${p.sampled} rows have matching legacy and v2 values`);
    if (left.length > 0) {
        throw new GateFailure(`verification gate: ${left.map((c) => `${c.table} has ${c.nulls} rows with ${c.column} IS NULL`).join("; ")}; re-run the backfill (pulumi up) before resuming writers`);
    }
    let report: string | undefined;
    if (cutover) {
        for (const d of drift) say(`verification: parity ${describeParityDrift(d, cutover)}`);
        // The ids an investigation starts from, kept beside the dumps.
        const dir = pathOption(values, "report-dir");
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        report = path.join(dir, `parity-${utcStamp()}.json`);
        fs.writeFileSync(report, `${JSON.stringify({ cutover, tables: drift }, null, 2)}\n`, { mode: 0o600 });
        const drifted = drift.filter((d) => d.after.differ > 0);
        if (drifted.length > 0) {
            throw new GateFailure(
                `verification gate: parity drift after the cut-over (rollout:parityCutover ${cutover.value}), a regression to investigate before the next export: ` +
                    `${drifted.map((d) => describeParityDrift(d, cutover)).join("; ")}. Every row is in ${report}`,
            );
        }
    }
    result({ nulls: counts, parity, ...(cutover ? { drift, report } : {}) });
}

/** Rehearsal and production side by side, from production's step times on stdin (JSON), beside the dumps. */
async function rehearsalReport(values: Values): Promise<void> {
    const rehearsal = readRehearsal(pathOption(values, "rehearsal"));
    const production = JSON.parse(fs.readFileSync(0, "utf8") || "{}") as Partial<Record<BudgetedStep, number>>;
    const policy = budgetPolicyOption(values);
    const bytes = await databaseBytes();
    const dir = pathOption(values, "dir");
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const base = path.join(dir, `${required(values, "label")}-vs-rehearsal-${utcStamp()}`);
    fs.writeFileSync(`${base}.md`, sideBySide(rehearsal, production, bytes, policy), { mode: 0o600 });
    fs.writeFileSync(`${base}.json`, `${JSON.stringify({ rehearsal, production: { databaseBytes: bytes, stepMillis: production }, policy }, null, 2)}\n`, { mode: 0o600 });
    say(`rehearsal report: ${base}.md`);
    result({ path: `${base}.md` });
}

async function probe(values: Values): Promise<void> {
    const report = await runProbes(
        {
            appDir: pathOption(values, "app-dir"),
            alembic: required(values, "alembic"),
            backfill: required(values, "backfill"),
            expectedHead: required(values, "expected-head"),
            targetRevision: required(values, "target-revision"),
            versionTable: versionTable(values),
            backupDir: pathOption(values, "backup-dir"),
            newColumns: columnsOption(values),
            lockTimeout: optional(values, "lock-timeout") ?? DEFAULT_LOCK_TIMEOUT,
            parityCutover: parseParityCutover(optional(values, "parity-cutover"), optional(values, "parity-cutover-column")).cutover,
            rehearsal: optional(values, "rehearsal")
                ? {
                      file: pathOption(values, "rehearsal"),
                      sizeFactor: Number(optional(values, "rehearsal-size-factor") ?? "4"),
                      budget: budgetPolicyOption(values),
                  }
                : undefined,
            clientTools: optional(values, "access") ? clientTargetOption(values) : undefined,
        },
        process.env,
        say,
    );
    say(`probe: done in ${report.millis} ms`);
    result(report);
}

const COMMANDS: Record<keyof typeof SUBCOMMANDS, (values: Values) => Promise<void>> = {
    preflight,
    backup,
    migrate: (values) => (values.direction === "down" ? migrate(values) : afterPause(values, () => migrate(values))),
    backfill: (values) => (values.mode === "apply" ? afterPause(values, () => backfill(values)) : backfill(values)),
    writers,
    "verify-schema": verifySchema,
    "verify-backfill": (values) => afterPause(values, () => verifyBackfill(values)),
    probe,
    "rehearsal-report": rehearsalReport,
};

const mainStarted = performance.now();

async function main(argv: string[]): Promise<number> {
    const [name, ...rest] = argv;
    if (!name || name === "--help" || name === "-h" || name === "help") {
        process.stdout.write(`${HELP}\n`);
        return name ? 0 : 2;
    }
    if (!Object.hasOwn(SUBCOMMANDS, name)) {
        say(`rollout: unknown command "${name}"\n\n${HELP}`);
        return 2;
    }
    const command = name as keyof typeof SUBCOMMANDS;
    const values: Values = readCli(rest, SUBCOMMANDS[command] as CliSpec);
    completeDatabaseUrlFromPasswordFile();
    installOutputScrubber(environmentPasswordForms());
    stopWhenCancelled(name);
    // Every subcommand is bounded; steps that run children also stop them at their own timeout.
    stepLimit = await resolveStepLimit(values);
    setTimeout(() => {
        say(`rollout ${name}: past ${stepLimit.by}; stopping`);
        stopAllChildren("SIGKILL");
        process.exit(1);
    }, stepLimit.ms + 30_000).unref();
    await COMMANDS[command](values);
    return 0;
}

/**
 * A provider cancels a step by killing the shell that runs it: the project's
 * kills the shell's whole process group, upstream's only the shell itself,
 * and then waits for this tool, its child, to end. So the tool watches for
 * the loss of its parent and stops as if told to: an application command it
 * runs gets SIGTERM (then SIGKILL) and the step fails as a stopped step does;
 * between commands it exits at once.
 */
function stopWhenCancelled(name: string): void {
    const parent = process.ppid;
    if (parent <= 1) return; // started detached: no shell to lose
    const watch = setInterval(() => {
        if (process.ppid === parent) return;
        clearInterval(watch);
        say(`rollout ${name}: the step's shell is gone (the update was cancelled); stopping`);
        if (process.listenerCount("SIGTERM") === 0) process.exit(130);
        process.emit("SIGTERM", "SIGTERM");
        setTimeout(() => process.exit(130), 15_000).unref();
    }, 250);
    watch.unref();
}

main(process.argv.slice(2)).then(
    (code) => {
        // The tool's whole life, and the part before main() ran: node's start and module loading.
        profileEvent(`protea-rollout ${process.argv[2]}`, performance.now(), { loadMs: Math.round(mainStarted) });
        process.exit(code);
    },
    (err: Error) => {
        // The scrubber sees every line: an error before main() installed it gets it now.
        installOutputScrubber(environmentPasswordForms());
        say(err instanceof GateFailure ? err.message : `rollout: ${err.message}`);
        process.exit(1);
    },
);
