/**
 * `npm run drill`: rehearses the whole rollout on a throwaway clone and times
 * every step. preview, up, checks, an idempotent re-run, the rollback, checks,
 * optionally the restore from the pre-flight backup (checked down to every
 * table's rows), then the clone is torn down (unless --keep) and checked gone.
 * Writes drill-report-<timestamp>.md and .json.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { EngineEvent, LocalWorkspace, Stack, StackSettings } from "@pulumi/pulumi/automation";
import { applicationEnvironment, completedStepEnvironment, passwordForms, withDatabase } from "../lib/postgres/database";
import { installOutputScrubber, secretForms } from "../lib/process/scrub";
import {
    Check, compareTableData, containersNamed, dockerCloneRemoved, DrillReport, localCloneRemoved, progressLine,
    readTablesSnapshot, renderMarkdown, RUNBOOK_TIMES, StepTiming, TableChecksum, tableChecksums, writeTablesSnapshot,
} from "../lib/drill/drillReport";
import {
    checkoutRelative, clusterDirSetting, DEFAULT_DRILL_IMAGE, DRILL_TEMPLATE, drillConfigFile, drillTemplateFile, drillWorkDir,
    resolveDrillPath, StackSettingsLike, tablesSnapshotFile, withoutStackSecrets, workingSettings, writeWorkingProject,
} from "../lib/config/drillConfig";
import { readPostmasterPid } from "../lib/postgres/cluster/clusterFiles";
import { clusterLocation } from "../lib/postgres/cluster/clusterLayout";
import { findFreePort, isListening } from "../lib/process/freePort";
import { isProcessAlive, runShell, tail } from "../lib/process/processes";
import { pendingMigrationSql } from "../lib/preview/probes";
import { pendingSqlChecksum, Rehearsal } from "../lib/runbook/rehearsal";
import { restoreFromDump } from "../lib/runbook/restore";
import { columnStates, nullCounts, schemaMismatches } from "../lib/postgres/schemaChecks";
import { inDirectory } from "../lib/process/shell";
import { cliSpec, readCli } from "../lib/process/cliOptions";
import { PROJECT_ROOT, stackConfig, stackId, urnsOfType } from "../lib/runbook/stack";
import { StackConfig } from "../lib/config/stackConfig";
import { describeLoad, LOAD_RECORD, LoadRecord } from "../lib/drill/loadRecord";
import { dropPristine, pristinesOfDump, PRISTINE_ROOT_SETTING, shaPrefix } from "../lib/drill/pristineCopy";

const CLI = cliSpec({
    usage: "npm run drill --",
    description: `Rehearses the schema_sha_v2 rollout on a throwaway clone and writes a timing report.

The stack's config is made afresh from its tracked template (Pulumi.NAME.yaml,
else Pulumi.drill.yaml) for every drill, in .state/drill/NAME/Pulumi.NAME.yaml:
flags apply to this drill only; only the generated secrets and port are kept.`,
    options: {
        stack: { type: "string", value: "NAME", default: "drill", description: "the drill stack" },
        engine: { type: "string", value: "local|docker", description: "local: initdb/pg_ctl cluster (default); docker: a container of --image" },
        image: { type: "string", value: "NAME", description: `the docker engine's image (default ${DEFAULT_DRILL_IMAGE}); one built locally is used as it is, never pulled` },
        "source-dump": { type: "string", value: "FILE", description: "restore this production dump (pg_dump -F c) instead of a sample ('' for the generated sample when the template sets a dump)" },
        datasets: { type: "string", value: "N", description: "sample size (default 2) ..." },
        models: { type: "string", value: "M", description: "... reranker models (default 51) ..." },
        "embedding-rows": { type: "string", value: "R", description: "... and rows of the bulk embedding table (default 0; ~1.1 KiB each)" },
        "with-restore": { type: "boolean", description: "also rehearse the restore from the pre-flight backup, and check that every table's rows are back (count and checksum, as before the rollout)" },
        keep: { type: "boolean", description: "leave the clone running (npm run pulumi -- destroy --stack NAME removes it)" },
        fresh: {
            type: "boolean",
            description: "local engine, from a dump: restore it even when a pristine copy of it was kept (and keep a new one); without it, a dump with the same SHA-256 as an earlier drill's is cloned from that drill's pristine copy",
        },
        "drop-pristine": { type: "boolean", description: "drop the dump's pristine copy (.state/drill-pristine/<sha256>) at the end, instead of keeping it for the next drill (drill:keepPristine false)" },
        "report-dir": { type: "string", value: "DIR", description: "where the report goes (default: drill-reports)" },
        prepare: { type: "boolean", description: "only make the stack's working folder (.state/drill/NAME) and exit" },
    },
});

const CONFIG_FLAGS: Record<string, string> = {
    engine: "drill:engine", image: "drill:image", "source-dump": "drill:sourceDump", datasets: "drill:datasets",
    models: "drill:models", "embedding-rows": "drill:embeddingRows",
};

/** For every Pulumi command of a drill stack: a working copy without its salt takes it from the stack's state. */
const DRILL_ENGINE_ENV = { PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER: "true" };

let say = (line: string) => {
    process.stdout.write(`drill: ${line}\n`);
};

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
        return this.add({ name, pass, detail });
    }

    add(check: Check): boolean {
        this.checks.push(check);
        say(`  ${check.pass ? "PASS" : "FAIL"} ${check.name}: ${check.detail}`);
        return check.pass;
    }

    /** Runs a Pulumi operation, timing it and printing a line per step (lib/drill/drillReport.ts progressLine). */
    async engine<T>(label: string, operation: (onEvent: (e: EngineEvent) => void) => Promise<T>): Promise<T> {
        const started = Date.now();
        const onEvent = (event: EngineEvent) => {
            const line = progressLine(event);
            if (line) say(`    ${line}`);
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

    /** Every table's row count and checksum, to compare after the restore. */
    async tableData(): Promise<TableChecksum[]> {
        return withDatabase(this.config.rollout.database, tableChecksums);
    }

    async expectRolledBack(when: string): Promise<void> {
        const { states, revision } = await this.schema();
        const present = schemaMismatches(states, "absent");
        this.check(`${when}: columns and indexes gone`, present.length === 0, present.join("; ") || "none of the new columns or indexes exist");
        this.check(`${when}: alembic at expected head`, revision.join() === this.config.rollout.expectedHead, `alembic_version = ${revision.join(", ")}`);
    }

    /** The runbook's "idempotent second run": the backfill again, outside Pulumi, must write nothing (the database says, not what the script prints). */
    async idempotentRerun(): Promise<void> {
        const { appDir, backfill, batchSize, newColumns } = this.config.rollout;
        const tables = [...new Set(newColumns.map((c) => c.table))];
        const before = await withDatabase(this.config.rollout.database, async (client) => Number((await client.query("SELECT txid_current() % 4294967296 AS xid")).rows[0].xid));
        const started = Date.now();
        const result = await runShell(inDirectory(appDir, `${backfill} --batch-size ${batchSize}`), {
            env: applicationEnvironment(completedStepEnvironment(this.config.rollout, this.config.dbUrl)),
        });
        this.steps.idempotentRerun = Date.now() - started;
        // Rows a transaction after `before` wrote carry its xid in xmin.
        const written = await withDatabase(this.config.rollout.database, async (client) => {
            const counts: { table: string; rows: number }[] = [];
            for (const table of tables) {
                const rows = Number((await client.query(`SELECT count(*) AS n FROM "${table}" WHERE xmin::text::bigint > $1`, [before])).rows[0].n);
                counts.push({ table, rows });
            }
            return counts;
        });
        const detail = result.code === 0 ? written.map((w) => `${w.table}: ${w.rows} rows written`).join("; ") : `exit ${result.code}: ${tail(result.stderr || result.stdout)}`;
        this.check("idempotent re-run writes nothing", result.code === 0 && written.every((w) => w.rows === 0), detail);
    }

    get downgrade(): number | undefined {
        return this.downgradeMillis;
    }
}

/**
 * An engine failure in a few lines: the lines that name the error (a failed
 * command's own message, e.g. drill-db's), else the first lines.
 */
function failure(err: Error, lines: number): string {
    const all = err.message.split("\n").map((l) => l.trim()).filter(Boolean);
    // What the project's tools said (`drill-db: …`, `rollout: …`) first, then the engine's error lines.
    const own = all.filter((l) => /^(drill-db|rollout|restore|backup): /.test(l));
    const errors = all.filter((l) => /^error: |failed|cannot /i.test(l) && !/^(\+|~|-)\s/.test(l) && l.length < 400);
    const picked = [...new Set([...own, ...errors])];
    return (picked.length > 0 ? picked : all).slice(0, lines).join(" ");
}

/** A path for display: relative to the project root when inside it. */
const shown = (p: string) => checkoutRelative(p);

function isPortFree(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const server = net.createServer();
        server.once("error", () => resolve(false));
        server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
}

/**
 * Opens (creating when new) the drill stack in its working folder
 * .state/drill/<stack> (lib/config/drillConfig.ts). `fromTemplate`: the stack's
 * config starts again from its tracked template, keeping only the generated
 * salt, drill:password and drill:port of the previous copy, plus `overrides`
 * (this drill's flags); otherwise an existing working copy is kept as it is
 * (by-hand `npm run pulumi` commands). A new stack gets a random
 * drill:password; a stack without drill:port a free port on 127.0.0.1.
 */
async function openDrillStack(stackName: string, fromTemplate: boolean, overrides: Record<string, string | undefined>): Promise<Stack> {
    const template = drillTemplateFile(stackName);
    if (!template) throw new Error(`stack ${stackName} is not a drill stack: Pulumi.${stackName}.yaml does not set drill:engine (a drill stack without its own file starts from ${DRILL_TEMPLATE})`);
    const workDir = writeWorkingProject(stackName);
    const configFile = drillConfigFile(stackName);
    const ws = await LocalWorkspace.create({ workDir, envVars: DRILL_ENGINE_ENV });
    const previous = fs.existsSync(configFile) ? ((await ws.stackSettings(stackName)) as StackSettingsLike) : undefined;
    let settings: StackSettingsLike;
    if (fromTemplate || !previous) {
        const templateWs = await LocalWorkspace.create({ workDir: path.dirname(template) });
        const templateSettings = (await templateWs.stackSettings(path.basename(template).replace(/^Pulumi\.|\.ya?ml$/g, ""))) as StackSettingsLike;
        settings = workingSettings(templateSettings, previous, overrides);
    } else {
        settings = previous;
    }
    const exists = (await ws.listStacks()).some((s) => s.name === stackName || s.name.endsWith(`/${stackName}`));
    if (!exists && previous && (previous.encryptionSalt || previous.encryptedKey)) {
        // Salt and secrets of a stack that is gone (a new backend or passphrase) would not open the new one.
        settings = withoutStackSecrets(settings);
        say(`  stack ${stackName} is new in this backend: its working config starts without the old salt and password`);
    }
    const config = (settings.config ??= {});
    let pickedPort = false;
    if (config["drill:port"] === undefined) {
        config["drill:port"] = String(await findFreePort());
        pickedPort = true;
    }
    await ws.saveStackSettings(stackName, settings as StackSettings);
    const stack = exists ? await Stack.select(stackName, ws) : await Stack.create(stackName, ws);
    say(`  config: ${shown(configFile)} (from ${shown(template)}${Object.keys(overrides).length ? `, with ${Object.keys(overrides).join(", ")} for this drill` : ""})`);

    if (!isSecureValue(config["drill:password"])) {
        await stack.setConfig("drill:password", { value: randomBytes(24).toString("base64url"), secret: true });
        say("  set a random drill:password (secret) for the clone, kept in the working config");
    }
    const port = Number(config["drill:port"]);
    if (pickedPort) {
        say(`  picked the free port 127.0.0.1:${port} for the clone, kept in the working config for the next drills`);
    } else if (fromTemplate && Number.isInteger(port) && !(await isPortFree(port)) && !(await hasClone(stack))) {
        // The kept port went to another process meanwhile: this stack's clone does not hold it.
        const other = await findFreePort();
        await stack.setConfig("drill:port", { value: String(other) });
        say(`  port ${port} is taken by another process; picked the free port 127.0.0.1:${other} instead`);
    }
    return stack;
}

function isSecureValue(value: unknown): boolean {
    return typeof value === "object" && value !== null && typeof (value as { secure?: unknown }).secure === "string";
}

/** True when the stack's state has a clone (cluster command or container). */
async function hasClone(stack: Stack): Promise<boolean> {
    const resources: { type: string; urn: string }[] = (await stack.exportStack()).deployment?.resources ?? [];
    return resources.some((r) => r.type === "docker:index/container:Container" || (r.type === "command:local:Command" && r.urn.endsWith("::drill-cluster")));
}

/** This drill's flags as drill:* values; a relative dump is from where npm was run. */
function configOverrides(flags: Record<string, string | boolean | undefined>): Record<string, string | undefined> {
    const overrides: Record<string, string | undefined> = {};
    for (const [flag, key] of Object.entries(CONFIG_FLAGS)) {
        const value = flags[flag];
        if (typeof value !== "string") continue;
        if (flag === "source-dump" && value !== "" && !value.startsWith("~") && !path.isAbsolute(value)) {
            overrides[key] = checkoutRelative(path.resolve(process.env.INIT_CWD ?? process.cwd(), value));
        } else {
            overrides[key] = value;
        }
    }
    return overrides;
}

async function main(): Promise<number> {
    const flags = readCli(process.argv.slice(2), CLI);
    const started = Date.now();
    const startedAt = new Date().toISOString();
    const stackName = flags.stack;
    if (flags.prepare) {
        // For scripts/pulumi.sh: progress on stderr, so `npm run pulumi -- stack export` stays clean.
        say = (line: string) => {
            process.stderr.write(`drill: ${line}\n`);
        };
        await openDrillStack(stackName, false, configOverrides(flags));
        process.stdout.write(`${drillWorkDir(stackName)}\n`);
        return 0;
    }
    const total = flags["with-restore"] ? 8 : 7;
    let n = 0;
    const stepLine = (what: string) => say(`[${++n}/${total}] ${what}`);

    stepLine(`stack ${stackName}`);
    const stack = await openDrillStack(stackName, true, configOverrides(flags));
    const drill = new Drill(stack, await stackConfig(stack));
    installOutputScrubber([...passwordForms(drill.config.rollout), ...secretForms(drill.config.drill?.password)]);
    const drillConfig = drill.config.drill!;
    const cluster = clusterDirSetting(stackName, drillConfig.stateDir);
    const where = drillConfig.engine === "local" ? clusterLocation(resolveDrillPath(cluster.setting), { relocatable: cluster.relocatable, prefix: "protea-drill-" }) : undefined;
    if (where?.relocated) {
        say(`  OS user postgres cannot reach ${path.dirname(where.preferred)}: the clone's cluster goes to ${where.dir} (0700, owned by postgres)`);
    }
    say(`  clone: ${where ? `local cluster in ${shown(where.dir)}` : `container ${drillConfig.containerName} of ${drillConfig.image}`} on 127.0.0.1:${drillConfig.port}`);
    let clonePid: number | undefined;
    let tablesBeforeRollout: TableChecksum[] | undefined;
    let load: LoadRecord | undefined;
    const pristineApplies = drillConfig.engine === "local" && drillConfig.sourceDumpPath !== undefined;
    if (drillConfig.sourceDump && !pristineApplies) say("  docker engine: the dump is restored on every drill (pristine copies are the local engine's)");
    if (pristineApplies && flags.fresh) await dropPristinesOf(drillConfig.sourceDumpPath!, "--fresh: this drill restores the dump and keeps a new copy");

    try {
        stepLine("preview (the dry run)");
        await drill.engine("pulumi preview", (onEvent) => stack.preview({ onEvent }));

        stepLine(`up: clone (${drillConfig.engine}, ${drillConfig.sourceDump ? "restore " + drillConfig.sourceDump : "generated sample"}), then the rollout`);
        const tablesFile = resolveDrillPath(tablesSnapshotFile(stackName));
        if (flags["with-restore"] && (await hasClone(stack))) {
            // A clone kept from an earlier drill is not loaded again, so its tables step does not run: record them now.
            writeTablesSnapshot(tablesFile, await drill.tableData());
        }
        const up = await drill.engine("pulumi up", (onEvent) => stack.up({ onEvent }));
        const stepMillis = up.outputs.stepMillis?.value ?? {};
        Object.assign(drill.steps, { restore: stepMillis.load, backup: stepMillis.backup, upgrade: stepMillis.upgrade, backfillDryRun: stepMillis.backfillDryRun, backfillApply: stepMillis.backfillApply });
        drill.backupBytes = up.outputs.backupSizeBytes?.value;
        drill.check("backup written and verified", typeof up.outputs.backupPath?.value === "string" && fs.existsSync(up.outputs.backupPath.value), `${up.outputs.backupPath?.value} (${up.outputs.backupSizeBytes?.value} bytes, sha256 ${String(up.outputs.backupSha256?.value).slice(0, 12)}…)`);
        await drill.expectRolledOut("after up");
        clonePid = where ? readPostmasterPid(path.join(where.dir, "data")) : undefined;
        load = where && pristineApplies ? readLoadRecord(path.join(where.dir, LOAD_RECORD)) : undefined;
        if (load) say(`  load: ${describeLoad(load)}`);
        tablesBeforeRollout = readTablesSnapshot(tablesFile);

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
            const dump = { path: up.outputs.backupPath.value as string, sha256: up.outputs.backupSha256?.value as string | undefined };
            await restoreFromDump(drill.config.rollout, drill.config.dbUrl, dump, await stackId(stack), (line: string) => say(`  ${line}`));
            drill.steps.restoreFromBackup = Date.now() - restoreStarted;
            await drill.expectRolledBack("after restore");
            drill.add(compareTableData("after restore", tablesBeforeRollout, await drill.tableData()));
        }
    } catch (err) {
        drill.check("drill ran to the end", false, failure(err as Error, 12));
    }

    if (flags.keep) {
        stepLine(`kept the clone on 127.0.0.1:${drillConfig.port}: remove it with \`npm run pulumi -- destroy --stack ${stackName}\``);
    } else {
        stepLine("tear down the clone");
        try {
            await drill.engine("pulumi destroy (teardown)", (onEvent) => stack.destroy({ onEvent }));
            const { port } = drillConfig;
            const listening = await isListening(port);
            if (where) {
                const left = [...new Set([where.preferred, where.dir])].filter((dir) => fs.existsSync(dir)).map(shown);
                const running = clonePid !== undefined && isProcessAlive(clonePid);
                drill.add(localCloneRemoved({ dir: shown(where.dir), left, pid: clonePid, running, port, listening }));
            } else {
                const left = await containersNamed(drillConfig.containerName);
                drill.add(dockerCloneRemoved({ containerName: drillConfig.containerName, left, port, listening }));
            }
        } catch (err) {
            drill.check("clone removed", false, failure(err as Error, 6));
        }
    }

    if (pristineApplies && (flags["drop-pristine"] || !drillConfig.keepPristine)) {
        const dropped = await dropPristinesOf(drillConfig.sourceDumpPath!, flags["drop-pristine"] ? "--drop-pristine" : "drill:keepPristine is false");
        const left = (await pristinesOfDump(drillConfig.sourceDumpPath!)).pristines;
        drill.check("pristine copy dropped", left.length === 0, left.length === 0 ? `${dropped} dropped; none left for ${drillConfig.sourceDump}` : `still there: ${left.map((p) => p.dir).join(", ")}`);
    } else if (load?.sha256 && load.pristineDir && !load.pristineError) {
        say(`  kept the pristine copy ${shaPrefix(load.sha256)} of ${drillConfig.sourceDump} in ${PRISTINE_ROOT_SETTING} for the next drill from it (drop it: --drop-pristine)`);
    }

    const source = drillConfig.sourceDump ? `dump ${drillConfig.sourceDump}` : `generated sample (${drillConfig.sample.datasets} datasets, ${drillConfig.sample.models} reranker models, ${drillConfig.sample.embeddingRows} embedding rows)`;
    const report: DrillReport = {
        startedAt,
        stack: stackName,
        engine: drillConfig.engine,
        source,
        rows: drill.rows,
        sourceDumpBytes: drillConfig.sourceDumpPath && fs.existsSync(drillConfig.sourceDumpPath) ? fs.statSync(drillConfig.sourceDumpPath).size : undefined,
        backupBytes: drill.backupBytes,
        databaseBytes: drill.databaseBytes,
        load: load && { ...load, summary: describeLoad(load) },
        steps: stepTable(drill.steps, drillConfig.sourceDump !== undefined, load),
        engineMillis: drill.engineMillis,
        checks: drill.checks,
        tablesBeforeRollout: flags["with-restore"] ? tablesBeforeRollout : undefined,
        rehearsal: await rehearsalFacts(drill, startedAt, source),
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

/** What production's preview and budgets compare with (rollout:rehearsal naming this report's JSON). */
async function rehearsalFacts(drill: Drill, at: string, source: string): Promise<Rehearsal | undefined> {
    const rollout = drill.config.rollout;
    if (drill.databaseBytes === undefined) return undefined;
    // Offline (`--sql`): nothing runs against the clone; an alembic that cannot print it leaves the checksum out.
    const pending = await pendingMigrationSql(rollout, completedStepEnvironment(rollout, drill.config.dbUrl)).catch(() => undefined);
    const steps = drill.steps;
    return {
        at,
        source,
        databaseBytes: drill.databaseBytes,
        rows: drill.rows,
        expectedHead: rollout.expectedHead,
        targetRevision: rollout.targetRevision,
        pendingSqlSha256: pending && pendingSqlChecksum(pending.sql),
        stepMillis: { backup: steps.backup, upgrade: steps.upgrade, backfillDryRun: steps.backfillDryRun, backfillApply: steps.backfillApply },
    };
}

/** drill-db load-dump's record of the load (lib/drill/loadRecord.ts), if it left one. */
function readLoadRecord(file: string): LoadRecord | undefined {
    try {
        return JSON.parse(fs.readFileSync(file, "utf8")) as LoadRecord;
    } catch {
        return undefined;
    }
}

/** Drops the pristine copies of `dump` (its content's, and any made from that path); returns how many. */
async function dropPristinesOf(dump: string, why: string): Promise<number> {
    const { pristines } = await pristinesOfDump(dump);
    for (const p of pristines) {
        await dropPristine(p.meta.sha256);
        say(`  ${why}: dropped the pristine copy ${shaPrefix(p.meta.sha256)} (${(p.meta.dataBytes / 2 ** 20).toFixed(1)} MiB)`);
    }
    return pristines.length;
}

/** The load's rows: the restore (and keeping its pristine copy), or the clone of one; or the sample. */
function loadSteps(steps: Record<string, number | undefined>, fromDump: boolean, load: LoadRecord | undefined): StepTiming[] {
    const ms = (seconds: number | undefined) => (seconds === undefined ? undefined : Math.round(seconds * 1000));
    if (load?.mode === "cloned") {
        return [{ step: `cloned from pristine ${shaPrefix(load.sha256 ?? "")} (sha256 of the dump, copy of the restored data directory, start; no pg_restore)`, millis: ms(load.seconds) }];
    }
    if (load?.mode === "restored") {
        return [
            { step: "pg_restore of the source dump (-j, file)", millis: ms(load.restoreSeconds), runbook: RUNBOOK_TIMES.restore },
            { step: load.pristineError ? "pristine copy for the next drill (failed, see the load line)" : `pristine copy ${shaPrefix(load.sha256 ?? "")} kept for the next drill (sha256, stop, copy, fsync, start)`, millis: ms((load.hashSeconds ?? 0) + (load.pristineSeconds ?? 0)) },
        ];
    }
    return [{ step: fromDump ? "pg_restore of the source dump (-j, file)" : "sample generation (no source dump)", millis: steps.restore, runbook: fromDump ? RUNBOOK_TIMES.restore : undefined }];
}

function stepTable(steps: Record<string, number | undefined>, fromDump: boolean, load?: LoadRecord): StepTiming[] {
    return [
        ...loadSteps(steps, fromDump, load),
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
