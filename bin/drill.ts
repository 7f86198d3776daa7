/**
 * `npm run drill`: rehearses the whole rollout on a throwaway clone and times
 * every step. preview, up, checks, an idempotent re-run, the rollback, checks,
 * optionally the restore from the pre-flight backup, then the clone is torn
 * down (unless --keep). Writes drill-report-<timestamp>.md and .json.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { EngineEvent, LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { withDatabase } from "../lib/database";
import { Check, DrillReport, renderMarkdown, RUNBOOK_TIMES, StepTiming } from "../lib/drillReport";
import { isProcessAlive, readPostmasterPid } from "../lib/postgresCluster";
import { runShell } from "../lib/processes";
import { restoreFromDump } from "../lib/restore";
import { columnStates, nullCounts, schemaMismatches } from "../lib/schemaChecks";
import { inDirectory } from "../lib/shell";
import { parseFlags } from "../lib/cliFlags";
import { PROJECT_ROOT, stackConfig, urnsOfType } from "../lib/stack";
import { StackConfig } from "../lib/stackConfig";
import { sqlalchemyUrl } from "../lib/databaseUrl";

const USAGE = `usage: npm run drill -- [options]

Rehearses the schema_sha_v2 rollout on a throwaway clone and writes a timing report.
  --stack NAME          the drill stack (default: drill)
  --engine local|docker local: initdb/pg_ctl cluster (default); docker: pgvector/pgvector:pg16
  --source-dump FILE    restore this production dump (pg_dump -F c) instead of a sample
  --datasets N          sample size (default 2) ...
  --models M            ... reranker models (default 51) ...
  --embedding-rows R    ... and rows of the bulk embedding table (default 0; ~1.1 KiB each)
  --with-restore        also rehearse the restore from the pre-flight backup
  --keep                leave the clone running (pulumi destroy --stack NAME removes it)
  --report-dir DIR      where the report goes (default: drill-reports)
Flags that set the clone's source or size are saved to the stack's config.`;

const FLAGS = {
    stack: "value", engine: "value", "source-dump": "value", datasets: "value", models: "value",
    "embedding-rows": "value", "with-restore": "flag", keep: "flag", "report-dir": "value",
} as const;

const CONFIG_FLAGS: Record<string, string> = {
    engine: "drill:engine", "source-dump": "drill:sourceDump", datasets: "drill:datasets",
    models: "drill:models", "embedding-rows": "drill:embeddingRows",
};

const say = (line: string) => process.stdout.write(`drill: ${line}\n`);

class Drill {
    readonly checks: Check[] = [];
    readonly steps: Record<string, number | undefined> = {};
    readonly engineMillis: Record<string, number> = {};
    rows: Record<string, number> = {};
    backupBytes?: number;
    databaseBytes?: number;
    private downgradeMillis?: number;

    constructor(readonly stack: Stack, readonly config: StackConfig) {}

    check(name: string, pass: boolean, detail: string): boolean {
        this.checks.push({ name, pass, detail });
        say(`  ${pass ? "PASS" : "FAIL"} ${name}: ${detail}`);
        return pass;
    }

    /** Runs a Pulumi operation, timing it and printing a line per finished resource. */
    async engine<T>(label: string, operation: (onEvent: (e: EngineEvent) => void) => Promise<T>): Promise<T> {
        const started = Date.now();
        const onEvent = (event: EngineEvent) => {
            const done = event.resOutputsEvent?.metadata;
            if (done && done.type === "command:local:Command") say(`    ${done.op} ${done.urn.split("::").pop()}`);
            const message = event.diagnosticEvent?.message ?? "";
            const downgrade = /step downgrade took (\d+) ms/.exec(message);
            if (downgrade) this.downgradeMillis = Number(downgrade[1]);
        };
        try {
            return await operation(onEvent);
        } finally {
            this.engineMillis[label] = Date.now() - started;
        }
    }

    async schema() {
        const columns = this.config.rollout.newColumns;
        return withDatabase(this.config.rollout.database, async (client) => {
            const states = await columnStates(client, columns);
            const present = columns.filter((c) => states.some((s) => s.table === c.table && s.column === c.column && s.columnExists));
            this.databaseBytes = Number((await client.query("SELECT pg_database_size(current_database()) AS size")).rows[0].size);
            return {
                states,
                nulls: await nullCounts(client, present),
                revision: (await client.query("SELECT version_num FROM alembic_version")).rows.map((r) => r.version_num as string),
            };
        });
    }

    async expectRolledOut(when: string): Promise<void> {
        const { states, nulls, revision } = await this.schema();
        const { targetRevision } = this.config.rollout;
        this.rows = Object.fromEntries(nulls.map((n) => [n.table, n.rows]));
        const missing = schemaMismatches(states, "present");
        this.check(`${when}: columns and indexes present`, missing.length === 0, missing.join("; ") || states.map((s) => `${s.table}.${s.column}, ${s.index}`).join("; "));
        this.check(`${when}: no NULL schema_sha_v2`, nulls.every((n) => n.nulls === 0), nulls.map((n) => `${n.table} ${n.nulls} of ${n.rows}`).join(", "));
        this.check(`${when}: alembic at target`, revision.join() === targetRevision, `alembic_version = ${revision.join(", ")}`);
    }

    async expectRolledBack(when: string): Promise<void> {
        const { states, revision } = await this.schema();
        const present = schemaMismatches(states, "absent");
        this.check(`${when}: columns and indexes gone`, present.length === 0, present.join("; ") || "none of the new columns or indexes exist");
        this.check(`${when}: alembic at expected head`, revision.join() === this.config.rollout.expectedHead, `alembic_version = ${revision.join(", ")}`);
    }

    /** The runbook's "idempotent second run": the backfill again, outside Pulumi, must write nothing. */
    async idempotentRerun(): Promise<void> {
        const { appDir, backfill, batchSize } = this.config.rollout;
        const started = Date.now();
        const result = await runShell(inDirectory(appDir, `${backfill} --batch-size ${batchSize}`), {
            env: { ...process.env, PROTEA_DB_URL: sqlalchemyUrl(this.config.rollout.database) },
        });
        this.steps.idempotentRerun = Date.now() - started;
        const updated = [...result.stdout.matchAll(/\bupdated=(\d+)/g)].map((m) => Number(m[1]));
        this.check("idempotent re-run writes nothing", result.code === 0 && updated.length > 0 && updated.every((n) => n === 0), result.stdout.trim().split("\n").filter((l) => /updated=/.test(l)).join("; ") || `exit ${result.code}`);
    }

    get downgrade(): number | undefined {
        return this.downgradeMillis;
    }
}

async function main(): Promise<number> {
    const flags = parseFlags(process.argv.slice(2), FLAGS, USAGE);
    const started = Date.now();
    const startedAt = new Date().toISOString();
    const stackName = typeof flags.stack === "string" ? flags.stack : "drill";
    const total = flags["with-restore"] ? 8 : 7;
    let n = 0;
    const stepLine = (what: string) => say(`[${++n}/${total}] ${what}`);

    stepLine(`stack ${stackName}`);
    const stack = await LocalWorkspace.createOrSelectStack({ stackName, workDir: PROJECT_ROOT });
    const existing = await stack.getAllConfig();
    if (!existing["drill:engine"]) throw new Error(`stack ${stackName} is not a drill stack (no drill:engine); copy Pulumi.drill.yaml to Pulumi.${stackName}.yaml`);
    if (!existing["drill:password"]) {
        await stack.setConfig("drill:password", { value: randomBytes(24).toString("base64url"), secret: true });
        say("  set a random drill:password (secret) for the clone");
    }
    for (const [flag, key] of Object.entries(CONFIG_FLAGS)) {
        if (typeof flags[flag] === "string") await stack.setConfig(key, { value: String(flags[flag]) });
    }
    const drill = new Drill(stack, await stackConfig(stack));
    const drillConfig = drill.config.drill!;
    let clonePid: number | undefined;

    try {
        stepLine("preview (the dry run)");
        await drill.engine("pulumi preview", (onEvent) => stack.preview({ onEvent }));

        stepLine(`up: clone (${drillConfig.engine}, ${drillConfig.sourceDump ? "restore " + drillConfig.sourceDump : "generated sample"}), then the rollout`);
        const up = await drill.engine("pulumi up", (onEvent) => stack.up({ onEvent }));
        const stepMillis = up.outputs.stepMillis?.value ?? {};
        Object.assign(drill.steps, { restore: stepMillis.load, backup: stepMillis.backup, upgrade: stepMillis.upgrade, backfillDryRun: stepMillis.backfillDryRun, backfillApply: stepMillis.backfillApply });
        drill.backupBytes = up.outputs.backupSizeBytes?.value;
        drill.check("backup written and verified", typeof up.outputs.backupPath?.value === "string" && fs.existsSync(up.outputs.backupPath.value), `${up.outputs.backupPath?.value} (${up.outputs.backupSizeBytes?.value} bytes, sha256 ${String(up.outputs.backupSha256?.value).slice(0, 12)}…)`);
        await drill.expectRolledOut("after up");
        clonePid = drillConfig.engine === "local" ? readPostmasterPid(path.join(drillConfig.stateDir, "data")) : undefined;

        stepLine("idempotency: the backfill again, and a second up");
        await drill.idempotentRerun();
        const again = await drill.engine("pulumi up (no-op)", (onEvent) => stack.up({ onEvent }));
        const changes = Object.keys(again.summary.resourceChanges ?? {});
        drill.check("second up changes nothing", changes.join() === "same", JSON.stringify(again.summary.resourceChanges));

        stepLine("rollback (pulumi destroy --target <Migration> --target-dependents)");
        const [migrationUrn] = await urnsOfType(stack, "protea:rollout:Migration");
        await drill.engine("pulumi destroy (rollback)", (onEvent) => stack.destroy({ target: [migrationUrn], targetDependents: true, onEvent }));
        drill.steps.downgrade = drill.downgrade;
        await drill.expectRolledBack("after rollback");
        drill.check("backup kept after rollback", fs.existsSync(up.outputs.backupPath.value), up.outputs.backupPath.value);

        if (flags["with-restore"]) {
            stepLine("restore from the pre-flight backup (the runbook's last resort)");
            const restoreStarted = Date.now();
            await restoreFromDump(drill.config.rollout, { path: up.outputs.backupPath.value, sha256: up.outputs.backupSha256.value }, `rollout/${stackName}`, (line) => say(`  ${line}`));
            drill.steps.restoreFromBackup = Date.now() - restoreStarted;
            await drill.expectRolledBack("after restore");
        }
    } catch (err) {
        drill.check("drill ran to the end", false, (err as Error).message.split("\n").slice(0, 12).join(" "));
    }

    if (flags.keep) {
        stepLine(`kept the clone: remove it with \`npm run pulumi -- destroy --stack ${stackName}\``);
    } else {
        stepLine("tear down the clone");
        try {
            await drill.engine("pulumi destroy (teardown)", (onEvent) => stack.destroy({ onEvent }));
            if (drillConfig.engine === "local") {
                const gone = !fs.existsSync(drillConfig.stateDir) && (clonePid === undefined || !isProcessAlive(clonePid));
                drill.check("clone removed", gone, `${drillConfig.stateDir} ${fs.existsSync(drillConfig.stateDir) ? "still exists" : "removed"}; postmaster ${clonePid ?? "?"} ${clonePid && isProcessAlive(clonePid) ? "still running" : "stopped"}`);
            }
        } catch (err) {
            drill.check("clone removed", false, (err as Error).message.split("\n").slice(0, 6).join(" "));
        }
    }

    const report: DrillReport = {
        startedAt,
        stack: stackName,
        engine: drillConfig.engine,
        source: drillConfig.sourceDump ? `dump ${drillConfig.sourceDump}` : `generated sample (${drillConfig.sample.datasets} datasets, ${drillConfig.sample.models} reranker models, ${drillConfig.sample.embeddingRows} embedding rows)`,
        rows: drill.rows,
        sourceDumpBytes: drillConfig.sourceDump && fs.existsSync(drillConfig.sourceDump) ? fs.statSync(drillConfig.sourceDump).size : undefined,
        backupBytes: drill.backupBytes,
        databaseBytes: drill.databaseBytes,
        steps: stepTable(drill.steps, drillConfig.sourceDump !== undefined),
        engineMillis: drill.engineMillis,
        checks: drill.checks,
        totalMillis: Date.now() - started,
    };
    const reportDir = path.resolve(typeof flags["report-dir"] === "string" ? flags["report-dir"] : path.join(PROJECT_ROOT, "drill-reports"));
    fs.mkdirSync(reportDir, { recursive: true });
    const base = path.join(reportDir, `drill-report-${startedAt.replace(/[:.]/g, "-")}`);
    fs.writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    fs.writeFileSync(`${base}.md`, renderMarkdown(report));
    process.stdout.write(`\n${renderMarkdown(report)}\n`);
    say(`report: ${base}.md and .json`);
    return drill.checks.every((c) => c.pass) ? 0 : 1;
}

function stepTable(steps: Record<string, number | undefined>, fromDump: boolean): StepTiming[] {
    return [
        { step: fromDump ? "pg_restore of the source dump (-j, file)" : "sample generation (no source dump)", millis: steps.restore, runbook: fromDump ? RUNBOOK_TIMES.restore : undefined },
        { step: "pre-flight pg_dump -F c, verified with pg_restore --list", millis: steps.backup },
        { step: "alembic upgrade to the target revision", millis: steps.upgrade, runbook: RUNBOOK_TIMES.upgrade },
        { step: "backfill --dry-run", millis: steps.backfillDryRun, runbook: RUNBOOK_TIMES.backfillDryRun },
        { step: "backfill (apply)", millis: steps.backfillApply, runbook: RUNBOOK_TIMES.backfillApply },
        { step: "idempotent second run (all rows skipped)", millis: steps.idempotentRerun, runbook: RUNBOOK_TIMES.idempotentRerun },
        { step: "alembic downgrade to the expected head", millis: steps.downgrade, runbook: RUNBOOK_TIMES.downgrade },
        { step: "restore from the pre-flight backup", millis: steps.restoreFromBackup },
    ];
}

main().then(
    (code) => process.exit(code),
    (err: Error) => {
        process.stderr.write(`drill: ${err.message}\n`);
        process.exit(1);
    },
);
