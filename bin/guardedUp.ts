/**
 * `npm run pulumi -- up …` runs `pulumi up` through this guard
 * (scripts/pulumi.sh). The first Ctrl-C, a second one, SIGTERM or a closed
 * terminal may stop the update part-way; Pulumi's provider then kills the
 * running step (the project's: its process group, with SIGKILL; upstream's:
 * its shell, which the step notices), so what must happen next cannot live
 * in the step. It lives here, in the command the operator ran, which outlives the
 * update and answers for it:
 *   - no process of the run is left: each carries the run's id in its
 *     environment (lib/runbook/interruptedRun/runProcesses.ts);
 *   - writers the run paused and did not resume (the state says,
 *     lib/runbook/interruptedRun/pausedWriters.ts) are resumed
 *     (rollout:resumeOnFailure), or the last lines say WRITERS ARE STILL PAUSED
 *     and the command that resumes them;
 *   - the output ends by naming `npm run recover -- --stack <name>`.
 * A bare `pulumi up` has none of this: its steps stop their application
 * commands when killed, but paused writers stay paused until `npm run
 * recover` resumes them.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { endProcesses } from "../lib/runbook/interruptedRun/endProcesses";
import { writersState } from "../lib/runbook/interruptedRun/pausedWriters";
import { lastWritersEvent, processesOfRun, RUN_ID_VARIABLE, RUN_RECORD_VARIABLE } from "../lib/runbook/interruptedRun/runProcesses";
import { completedStepEnvironment, passwordForms } from "../lib/postgres/database";
import { runShell } from "../lib/process/processes";
import { installOutputScrubber } from "../lib/process/scrub";
import { rolloutCommand } from "../lib/runbook/rolloutCli";
import { openStack, PROJECT_ROOT, recordWritersResumed, stackConfig } from "../lib/runbook/stack";

const HELP = `usage: npm run pulumi -- up [pulumi up flags]

Runs \`pulumi up\` and answers for an interrupted update (Ctrl-C, SIGTERM, a
closed terminal): ends what the run left running, resumes the writers it
paused (rollout:resumeOnFailure) or says loudly that they are still paused,
and names \`npm run recover -- --stack <name>\`. Every flag goes to pulumi up.`;

/** Where the guard's closing lines also go, for an operator whose terminal was closed. */
const LOG_DIR = path.join(PROJECT_ROOT, ".state", "interrupted");
const logLines: string[] = [];
const say = (line: string) => {
    logLines.push(line);
    process.stderr.write(`${line}\n`);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The value of `--name X`, `--name=X` or a short `-s X`/`-sX` among pulumi's arguments. */
function flagValue(args: string[], long: string, short?: string): string | undefined {
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === long || (short && a === short)) return args[i + 1];
        if (a.startsWith(`${long}=`)) return a.slice(long.length + 1);
        if (short && a.startsWith(short) && a.length > short.length && !a.startsWith("--")) return a.slice(short.length);
    }
    return undefined;
}

/** The stack the update ran on: named on the command line, or the workspace's selected one. */
function stackName(args: string[]): string | undefined {
    const named = flagValue(args, "--stack", "-s");
    if (named) return named;
    const cwd = flagValue(args, "--cwd", "-C") ?? process.cwd();
    const shown = spawnSync("pulumi", ["stack", "--show-name", "--non-interactive"], { cwd, encoding: "utf8" });
    return shown.status === 0 ? shown.stdout.trim() || undefined : undefined;
}

/** Ends what the run left running: the step's application commands, a step, a provider or language host whose CLI is gone. */
async function endLeftovers(runId: string): Promise<void> {
    // A cancelled step's watchdog (lib/runbook/appCommand.ts) stops its application command within a few seconds; give it that time.
    for (let waited = 0; waited < 5000 && processesOfRun(runId).length > 0; waited += 250) await sleep(250);
    const left = processesOfRun(runId);
    if (left.length === 0) {
        say("up: no process of the interrupted run is left running");
        return;
    }
    for (const ended of await endProcesses(left.map((p) => ({ pid: p.pid, startTicks: p.startTicks })), 5000)) {
        say(`up: ended ${ended.program} (pid ${ended.pid}) the interrupted run left running: ${ended.outcome}`);
    }
}

/** Resumes the writers the run paused and did not resume, or says loudly that they are still paused. */
async function answerForWriters(stack: string, runRecord: string): Promise<void> {
    // Its own process group: a further Ctrl-C must not stop the checks and the resume half-way.
    const handle = openStack(stack, undefined, true);
    const [{ rollout: config, dbUrl }, exported] = await Promise.all([stackConfig(handle), handle.exportStack()]);
    installOutputScrubber(passwordForms(config));
    // The state keeps it for recover on any checkout, unless a hard stop left operations in flight: importing would drop them, and recover needs them.
    const record = async () => {
        if ((exported.deployment?.pending_operations ?? []).length > 0) {
            say("up: (the state keeps the interrupted run's operations in flight for recover, so it does not record this resume: recover will run rollout:resumeWriters once more)");
            return;
        }
        await recordWritersResumed(handle, "the guard of an interrupted `npm run pulumi -- up`").catch((err: Error) => say(`up: (the state could not record it: ${err.message}; recover will resume them once more)`));
    };
    // The run's own notes first (its steps ran on this machine), then the state.
    const last = lastWritersEvent(runRecord);
    let state = writersState(exported.deployment);
    if (last === "writers-pause-started" && state === "not-paused") state = "unknown"; // stopped while pausing: the state has no pause yet
    if (last === "writers-resumed" && state !== "not-paused") {
        // A failing or stopped step resumed them itself (rollout:resumeOnFailure): no need to run the command again.
        say("up: the stopped step resumed the writers itself (rollout:resumeOnFailure)");
        await record();
        return;
    }
    if (state === "not-paused") {
        say("up: the writers were not left paused by this run");
        return;
    }
    const how = state === "paused" ? "this run paused the writers and did not resume them" : "this run was interrupted while pausing or resuming the writers";
    if (!config.resumeWriters) {
        say(`up: !!! WRITERS ARE STILL PAUSED: ${how}, and rollout:resumeWriters is not set: resume them by hand`);
        return;
    }
    if (!config.resumeOnFailure) {
        say(`up: !!! WRITERS ARE STILL PAUSED (rollout:resumeOnFailure=false): ${how}. Resume them with: ${config.resumeWriters}`);
        return;
    }
    say(`up: ${how}; resuming them (rollout:resumeOnFailure): ${config.resumeWriters}`);
    // Through the project's tool, as the Resume step runs it: bounded, scrubbed, the URL in the application's variable.
    const resume = rolloutCommand("writers", "--action", "resume", "--command", config.resumeWriters, "--timeout", config.stepTimeout);
    const resumed = await runShell(resume, { cwd: PROJECT_ROOT, env: completedStepEnvironment(config, dbUrl), show: "stderr", detached: true });
    if (resumed.code !== 0) {
        say(`up: !!! WRITERS ARE STILL PAUSED: resuming them failed (exit ${resumed.code}). Resume them with: ${config.resumeWriters}`);
        return;
    }
    say("up: the writers were resumed");
    await record();
}

/** Keeps the guard's lines, and the closing one, in a 0600 file: a closed terminal shows none of them. */
function keepLog(stack: string | undefined, closing: string): void {
    try {
        const file = path.join(LOG_DIR, `${stack ?? "stack"}-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
        fs.writeFileSync(file, `${[...logLines, closing].join("\n")}\n`, { mode: 0o600 });
        process.stderr.write(`up: these lines are also in ${file}\n`);
    } catch {
        // The terminal's lines are the record then.
    }
}

async function main(args: string[]): Promise<number> {
    if (args.includes("--help") || args.includes("-h")) {
        process.stdout.write(`${HELP}\n`);
        return 0;
    }
    installOutputScrubber();
    const runId = randomUUID();
    fs.mkdirSync(LOG_DIR, { recursive: true, mode: 0o700 });
    const runRecord = path.join(LOG_DIR, `run-${runId}.record`);
    let interruptedBy: NodeJS.Signals | undefined;
    const child = spawn("pulumi", args, { stdio: "inherit", env: { ...process.env, [RUN_ID_VARIABLE]: runId, [RUN_RECORD_VARIABLE]: runRecord } });
    // pulumi gets the terminal's Ctrl-C itself (same process group) and cancels; this process waits for it and stays for what follows.
    const onSignal = (signal: NodeJS.Signals) => {
        interruptedBy ??= signal;
        // A SIGTERM or SIGHUP sent to this process alone still cancels the update, as Ctrl-C does.
        if (signal !== "SIGINT" && child.exitCode === null) child.kill("SIGINT");
    };
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.on("error", (err) => reject(new Error(`cannot run pulumi: ${err.message}; run it through \`npm run pulumi -- up\``)));
        child.on("close", (c, s) => resolve({ code: c, signal: s }));
    });
    const interrupted = code !== 0 && (interruptedBy !== undefined || signal !== null || code === 130);
    if (!interrupted) {
        fs.rmSync(runRecord, { force: true });
        return code ?? 1;
    }
    const stack = stackName(args);
    say(`\nup: the update was interrupted (${interruptedBy ?? signal ?? `exit ${code}`}) before it finished; finishing what it left (Ctrl-C is ignored until then)`);
    try {
        await endLeftovers(runId);
        if (stack) await answerForWriters(stack, runRecord);
        else say("up: !!! cannot tell which stack ran; the writers may be paused: run `npm run recover -- --stack <name>`");
    } catch (err) {
        say(`up: !!! could not check the writers (${(err as Error).message}); they may be paused`);
    }
    fs.rmSync(runRecord, { force: true });
    const closing = `up: run \`npm run recover -- --stack ${stack ?? "<name>"}\` (it clears what the interrupted run left), then \`npm run pulumi -- up${stack ? ` --stack ${stack}` : ""}\` to finish the rollout`;
    keepLog(stack, closing);
    process.stderr.write(`${closing}\n`);
    return code ?? 130;
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
        process.stderr.write(`up: ${err.message}\n`);
        process.exit(1);
    },
);
