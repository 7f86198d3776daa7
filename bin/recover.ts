/**
 * `npm run recover -- --stack <name>`: the way back after a run that was
 * interrupted (a killed `pulumi up`, rollback or restore) or a database that
 * was changed outside the stack. In this order:
 *   1. ends the orphaned engine processes of this project's interrupted runs
 *      (language host, program, providers and the steps they ran), so nothing
 *      writes after the lock is gone;
 *   2. clears the stack's lock when the CLI that held it no longer runs;
 *   3. compares the database with the state, and makes the state match it:
 *      a migration the state records but the database lacks is forgotten; a
 *      migration an interrupted create committed is downgraded with the
 *      command the state recorded for it (under the rollout lock, gated);
 *      pending operations are dropped;
 *   4. resumes writers an interrupted run left paused, and removes dumps that
 *      were never finished (`.partial`).
 * It says what it found and did; the next `pulumi up` (or the rollback) then
 * starts from a state that tells the truth.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { cliSpec, readCli } from "../lib/process/cliOptions";
import { installOutputScrubber } from "../lib/process/scrub";
import { completedStepEnvironment, connect, passwordForms } from "../lib/postgres/database";
import { runShell } from "../lib/process/processes";

import { endProcesses } from "../lib/runbook/interruptedRun/endProcesses";
import { describeProcess, findOrphanedEngineProcesses } from "../lib/runbook/interruptedRun/orphanedProcesses";
import { pendingOperations, withoutPendingOperations } from "../lib/runbook/interruptedRun/pendingOperations";
import { writersState } from "../lib/runbook/interruptedRun/pausedWriters";
import { clearStaleLock, findStackLock } from "../lib/runbook/interruptedRun/stackLock";
import { rolloutCommand } from "../lib/runbook/rolloutCli";
import { describeHolder, lockHolders } from "../lib/runbook/rolloutLock";
import { observePhase, RolloutPhase } from "../lib/runbook/rolloutPhase";
import { forgetMigration, keepWritersResumed, openStack, PROJECT_ROOT, recordWritersResumed, stackConfig } from "../lib/runbook/stack";

const CLI = cliSpec({
    usage: "npm run recover --",
    description: `Brings a stack back after an interrupted run (a killed pulumi up, rollback or
restore) or an out-of-band change to its database: ends the run's orphaned
processes, clears its stale lock, makes the state match the database, resumes
writers left paused, and says what it did.`,
    options: {
        stack: { type: "string", value: "NAME", required: true, description: "the stack to bring back (prod, drill, …)" },
    },
});

const say = (line: string) => process.stdout.write(`recover: ${line}\n`);

interface PendingResource {
    type: string;
    resource: { urn: string; type: string; inputs?: { delete?: string; environment?: Record<string, string> } };
}

const nameOf = (urn: string) => urn.split("::").pop() ?? urn;

/** A value from `stack export --show-secrets`: secrets come wrapped, their plaintext JSON-encoded. */
function unwrapSecret<T>(value: unknown): T {
    const wrapped = value as { plaintext?: string } | undefined;
    return (wrapped && typeof wrapped === "object" && typeof wrapped.plaintext === "string" ? JSON.parse(wrapped.plaintext) : value) as T;
}

async function main(): Promise<void> {
    const flags = readCli(process.argv.slice(2), CLI);
    const stackName = flags.stack;
    const stack = openStack(stackName);
    const { rollout: config, dbUrl } = await stackConfig(stack);
    installOutputScrubber(passwordForms(config));
    const project = (await stack.workspace.projectSettings()).name;
    let interrupted = false;

    // 1. Orphaned processes first: a half-dead run must not write after its lock is gone.
    const orphans = findOrphanedEngineProcesses(PROJECT_ROOT).filter((p) => p.stack === null || p.stack === stackName);
    if (orphans.length > 0) {
        interrupted = true;
        say(`${orphans.length} orphaned process(es) of an interrupted run: ${orphans.map(describeProcess).join("; ")}`);
        for (const ended of await endProcesses(orphans.map((p) => ({ pid: p.pid, startTicks: p.startTicks })), 5000)) {
            say(`  pid ${ended.pid}: ${ended.outcome}`);
        }
    } else {
        say("no orphaned engine process");
    }

    // 2. The stack's lock.
    const backendUrl = process.env.PULUMI_BACKEND_URL ?? "";
    const report = findStackLock(backendUrl, project, stackName);
    if (!report.inspectable) {
        say(`the backend's lock cannot be inspected here (${report.reason})`);
    } else {
        for (const lock of report.locks) {
            if (lock.holder.state === "alive") throw new Error(`a pulumi run of stack ${stackName} is still running (${lock.holder.detail}); let it finish or stop it, then run recover again; nothing changed`);
            clearStaleLock(lock);
            interrupted = true;
            say(`cleared the stale lock of stack ${stackName} (${lock.holder.detail})`);
        }
        if (report.locks.length === 0) say(`stack ${stackName} is not locked`);
    }

    // 3. The database against the state.
    const client = await connect(config.database, "protea-rollout-recover");
    let phase: RolloutPhase;
    try {
        phase = await observePhase(client, config.newColumns);
        for (const holder of await lockHolders(client)) say(`the database's rollout lock is held: ${describeHolder(holder)}`);
    } finally {
        await client.end();
    }
    say(`database: ${phase === "pending" ? "the migration is not applied" : phase === "partial" ? "the new columns and indexes are partly there" : "the migration is applied"}${phase === "incomplete" ? ", the backfill is not finished" : ""}`);

    // Shown secrets: the interrupted upgrade's downgrade command and environment are run from it.
    const exported = await stack.exportStack({ showSecrets: true });
    const pending = (exported.deployment?.pending_operations ?? []) as PendingResource[];
    for (const op of pendingOperations(exported)) say(`pending operation of the interrupted run: ${op.type} ${nameOf(op.urn)}`);
    const migrationCreate = pending.find((op) => op.type === "creating" && op.resource.type === "command:local:Command" && nameOf(op.resource.urn).endsWith("-upgrade"));
    if (pending.length > 0) {
        interrupted = true;
        await stack.importStack(withoutPendingOperations(exported));
        say("dropped the pending operations from the state");
    }
    if (migrationCreate && phase !== "pending") {
        // The interrupted run's upgrade committed, but the state never recorded it: take it back with the
        // downgrade the state holds for it (gated and under the rollout lock), so the state is true again.
        const downgrade = unwrapSecret<string | undefined>(migrationCreate.resource.inputs?.delete);
        const environment = unwrapSecret<Record<string, string> | undefined>(migrationCreate.resource.inputs?.environment);
        if (!downgrade) throw new Error(`the interrupted ${nameOf(migrationCreate.resource.urn)} has no recorded downgrade; roll it back by hand`);
        say(`the interrupted run's upgrade had committed; downgrading it so the database matches the state`);
        const result = await runShell(downgrade, { cwd: PROJECT_ROOT, env: { ...process.env, ...environment }, show: true });
        if (result.code !== 0) throw new Error(`the downgrade failed (exit ${result.code}); the database still has the migration; see above`);
        phase = "pending";
    }
    const migrationInState = (exported.deployment?.resources ?? []).some((r: { type: string }) => r.type === "protea:rollout:Migration");
    if (migrationInState && phase === "pending") {
        await keepWritersResumed(stack, exported.deployment);
        await forgetMigration(stack, say);
        say("the state held a migration the database does not have: forgotten; the next `pulumi up` applies it again behind a fresh backup");
    }

    // 4. Writers and unfinished dumps.
    const writers = writersState(exported.deployment);
    if (writers !== "not-paused" && !config.resumeWriters) say("!!! the last run paused the writers and did not resume them, and rollout:resumeWriters is not set: resume them by hand");
    if (config.resumeWriters && writers !== "not-paused") {
        say(`resuming the writers the ${interrupted ? "interrupted " : ""}run ${writers === "paused" ? "paused and did not resume" : "may have left paused"}: ${config.resumeWriters}`);
        // Through the project's tool, as the Resume step runs it: bounded by rollout:stepTimeout, its output scrubbed.
        const resume = rolloutCommand("writers", "--action", "resume", "--command", config.resumeWriters, "--timeout", config.stepTimeout);
        // The writers' command gets the URL in the application's variable, as the Resume step gives it.
        const resumed = await runShell(resume, { cwd: PROJECT_ROOT, env: completedStepEnvironment(config, dbUrl), show: "stderr" });
        if (resumed.code !== 0) say(`!!! resuming the writers FAILED (exit ${resumed.code}): run it by hand: ${config.resumeWriters}`);
        else await recordWritersResumed(stack, "recover");
    }
    if (fs.existsSync(config.backupDir)) {
        for (const file of fs.readdirSync(config.backupDir).filter((f) => f.endsWith(".dump.partial"))) {
            fs.rmSync(path.join(config.backupDir, file));
            say(`removed ${file}: a dump that was never finished is never a backup`);
        }
    }


    say(`done: \`npm run pulumi -- up --stack ${stackName}\` continues the rollout; \`npm run rollback -- --stack ${stackName}\` rolls it back`);
}

installOutputScrubber();
main().catch((err: Error) => {
    process.stderr.write(`recover: ${err.message}\n`);
    process.exit(1);
});
