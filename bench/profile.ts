/**
 * Where the product's time goes (issue 12's profile): the operator's
 * `npm run pulumi -- preview`, `up --yes --skip-preview` (first, then no-op)
 * and `npm run rollback` of the prod-shaped
 * stack on a cluster seeded with the fixture, each broken into the engine's
 * phases (from its events: CLI start, language host and program load, the
 * program's own work before the first step, each step, the finish) and, per
 * step, the project tool's start and every process it ran (PROTEA_PROFILE_LOG,
 * lib/process/profileLog.ts). Fixed costs are timed on their own. Prints medians over
 * `--rounds`; asserts nothing.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { startPostgresCluster } from "../lib/postgres/cluster/cluster";
import { newTestStack, npmRun, TestStack } from "../test/integration/helpers/engine";
import { alembic, EXPECTED_HEAD, expectSuccess, FIXTURE_PYTHON, fixtureStackConfig, PROJECT_ROOT, seedSample } from "../test/integration/helpers/fixture";
import { benchFlags, loadAverage, machineLine, median, removeNow, removeOnExit, say, table } from "./common";

const CLI = {
    usage: "bash scripts/with-engine.sh npx ts-node --transpile-only bench/profile.ts",
    description: `Where a preview, an up, a no-op up and the rollback spend their time
(figures only, asserts nothing).`,
    flags: {
        rounds: { default: 3, min: 1, description: "runs of each, medians printed" },
        datasets: { default: 3000, min: 1, description: "datasets to seed" },
        models: { default: 12_000, min: 0, description: "reranker models to seed" },
        "embedding-rows": { default: 0, min: 0, description: "dataset_embedding rows to seed" },
    },
} as const;

const flags = benchFlags(CLI);

/** One line of the profile log (lib/process/profileLog.ts). */
interface Logged {
    what: string;
    ms: number;
    at: number;
    loadMs?: number;
}

/** A run's phases in order, name -> milliseconds. */
type Phases = Map<string, number>;

function readLog(file: string): Logged[] {
    if (!fs.existsSync(file)) return [];
    const lines = fs.readFileSync(file, "utf8").split("\n").filter(Boolean);
    fs.rmSync(file);
    return lines.map((l) => JSON.parse(l) as Logged);
}

/**
 * The operator's command (`npm run pulumi -- <args> --stack <name>`), phased
 * by its engine events: the CLI writes them to --event-log, read here as
 * they arrive (their own timestamps are whole seconds). Each step is a
 * command resource (its pre event to its outputs event), and the log lines
 * that ended inside it are what it ran.
 */
async function engineRun(stack: TestStack, args: string[], log: string): Promise<Phases> {
    const events = path.join(path.dirname(log), `events-${Date.now()}.jsonl`);
    fs.writeFileSync(events, "");
    let prelude = 0;
    let stackRegistered = 0;
    let firstStep = 0;
    let lastStep = 0;
    let summary = 0;
    const steps: { name: string; start: number; end: number }[] = [];
    const open = new Map<string, number>();
    let offset = 0;
    let partial = "";
    const readEvents = () => {
        const now = Date.now();
        const text = fs.readFileSync(events, "utf8");
        const fresh = partial + text.slice(offset);
        offset = text.length;
        const lines = fresh.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines.filter(Boolean)) {
            const e = JSON.parse(line) as EngineEvent;
            if (e.preludeEvent) prelude = now;
            const pre = e.resourcePreEvent?.metadata;
            if (pre) {
                if (pre.type === "pulumi:pulumi:Stack") stackRegistered ||= now;
                else firstStep ||= now;
                if (pre.type === "command:local:Command") open.set(pre.urn, now);
            }
            const done = e.resOutputsEvent?.metadata;
            // A preview's command resources do nothing (their pre and outputs events come together).
            if (done?.type === "command:local:Command" && done.op !== "same" && now - (open.get(done.urn) ?? now) >= 20) {
                steps.push({ name: done.urn.split("::").pop()!, start: open.get(done.urn) ?? now, end: now });
                lastStep = now;
            }
            if (e.summaryEvent) summary = now;
        }
    };
    const poll = setInterval(readEvents, 10);
    const started = Date.now();
    // --event-log exists with PULUMI_DEBUG_COMMANDS, as the Automation API sets it.
    const result = await npmRun(PROJECT_ROOT, "pulumi", [...args, "--stack", stack.stack.name, "--event-log", events], { ...stack.env, PULUMI_DEBUG_COMMANDS: "true" });
    const ended = Date.now();
    clearInterval(poll);
    readEvents();
    fs.rmSync(events);
    if (result.code !== 0) throw new Error(`npm run pulumi -- ${args.join(" ")} failed:\n${result.output}`);
    const logged = readLog(log);
    const phases: Phases = new Map();
    phases.set("npm, scripts/pulumi.sh, CLI start to the engine's first event", prelude - started);
    phases.set("language host, @pulumi/pulumi, the Stack resource", stackRegistered - prelude);
    phases.set("program load and body to the first step (modules, config, phase, lock)", (firstStep || summary) - stackRegistered);
    for (const step of steps.sort((a, b) => a.start - b.start)) {
        phases.set(`step ${step.name}`, step.end - step.start);
        for (const line of logged.filter((l) => l.at >= step.start && l.at <= step.end + 50)) {
            if (line.loadMs !== undefined) phases.set(`  ${step.name}: node start + module load`, line.loadMs);
            const key = `  ${step.name}: ${line.loadMs !== undefined ? "the tool, in all" : line.what}`;
            phases.set(key, (phases.get(key) ?? 0) + line.ms);
        }
    }
    // What ran outside the steps: the preview's probe (the dry run), the program's own children.
    for (const line of logged.filter((l) => !steps.some((step) => l.at >= step.start && l.at <= step.end + 50))) {
        if (line.loadMs !== undefined) phases.set(`  outside the steps: ${line.what}, node start + module load`, line.loadMs);
        const key = `  outside the steps: ${line.what}${line.loadMs !== undefined ? ", in all" : ""}`;
        phases.set(key, (phases.get(key) ?? 0) + line.ms);
    }
    if (steps.length > 0) phases.set("last step to the summary", summary - lastStep);
    else phases.set("first step to the summary (every resource unchanged)", summary - (firstStep || summary));
    phases.set("summary to the command's exit (state, display)", ended - summary);
    phases.set("total", ended - started);
    return phases;
}

/** `npm run rollback`, phased by bin/rollback.ts's own log lines. */
async function rollbackRun(stack: TestStack, log: string): Promise<Phases> {
    const started = Date.now();
    const result = await npmRun(PROJECT_ROOT, "rollback", ["--stack", stack.stack.name, "--yes"], stack.env);
    const ended = Date.now();
    if (result.code !== 0) throw new Error(`npm run rollback failed:\n${result.output}`);
    const logged = readLog(log);
    const phases: Phases = new Map();
    const toolStart = logged.find((l) => l.what.startsWith("rollback: node start"));
    if (toolStart) phases.set("npm run + scripts/with-engine.sh (engine and tools checks)", toolStart.at - toolStart.ms - started);
    for (const line of logged) {
        if (line.what.startsWith("rollback: ")) phases.set(line.what, line.ms);
        else if (line.loadMs !== undefined) phases.set(`  step: ${line.what}, node start + module load`, line.loadMs);
        if (line.loadMs !== undefined) phases.set(`  step: ${line.what}, in all`, line.ms);
        else if (!line.what.startsWith("rollback: ")) phases.set(`  step: ${line.what}`, (phases.get(`  step: ${line.what}`) ?? 0) + line.ms);
    }
    phases.set("total", ended - started);
    return phases;
}

/** Milliseconds of a command, median of `runs`. */
function fixedCost(command: string, args: string[], runs = 5): number {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
        const started = performance.now();
        const result = spawnSync(command, args, { cwd: PROJECT_ROOT, stdio: "ignore" });
        if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.status}`);
        times.push(performance.now() - started);
    }
    return median(times);
}

function mediansTable(title: string, runs: Phases[]): string {
    const names = [...new Set(runs.flatMap((r) => [...r.keys()]))];
    const rows = names.map((name) => {
        const values = runs.map((r) => r.get(name)).filter((v): v is number => v !== undefined);
        return [name, values.length ? `${(median(values) / 1000).toFixed(2)} s` : "-"];
    });
    return `${title}\n${table([["phase", "median"], ...rows])}`;
}

async function main(): Promise<void> {
    const loadBefore = loadAverage();
    const workDir = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), "protea-bench-profile-")));
    const log = path.join(workDir, "profile.jsonl");
    process.env.PROTEA_PROFILE_LOG = log;
    const cluster = await startPostgresCluster({ log: say });
    let stack: TestStack | undefined;
    try {
        expectSuccess(await alembic(cluster.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
        expectSuccess(
            await seedSample(cluster.sqlalchemyUrl, ["--datasets", String(flags.datasets), "--reranker-models", String(flags.models), "--embedding-rows", String(flags["embedding-rows"])]),
            "seed",
        );
        stack = await newTestStack(PROJECT_ROOT, fixtureStackConfig(cluster.sqlalchemyUrl, path.join(workDir, "backups")));
        removeOnExit(path.join(PROJECT_ROOT, `Pulumi.${stack.stack.name}.yaml`));
        const s = stack;
        const runs: Record<string, Phases[]> = { preview: [], "first up": [], "no-op up": [], rollback: [] };
        // One uncounted warm-up of the whole cycle: cold caches, the plugin's first start.
        for (let round = 0; round <= flags.rounds; round++) {
            const counted = round > 0;
            say(`${counted ? `round ${round}/${flags.rounds}` : "warm-up"}: preview, up, no-op up, rollback`);
            const preview = await engineRun(s, ["preview"], log);
            const up = await engineRun(s, ["up", "--yes", "--skip-preview"], log);
            const noop = await engineRun(s, ["up", "--yes", "--skip-preview"], log);
            const rollback = await rollbackRun(s, log);
            removeNow(path.join(workDir, "backups"));
            if (!counted) continue;
            runs.preview.push(preview);
            runs["first up"].push(up);
            runs["no-op up"].push(noop);
            runs.rollback.push(rollback);
        }
        const fixed = [
            ["node -e 0", fixedCost("node", ["-e", "0"])],
            ["pulumi version (the CLI's start)", fixedCost("pulumi", ["version"])],
            ["protea-rollout --help (a step's tool, compiled)", fixedCost("protea-rollout", ["--help"])],
            ["node: require @pulumi/pulumi", fixedCost("node", ["-e", "require('@pulumi/pulumi')"])],
            ["node: require @pulumi/pulumi, @pulumi/command, @pulumi/docker", fixedCost("node", ["-e", "require('@pulumi/pulumi'); require('@pulumi/command'); require('@pulumi/docker')"])],
            ["node + ts-node: load index.ts's modules (the language host's way)", fixedCost("node", ["-e", "require('ts-node').register({ transpileOnly: true }); require('./components'); require('./lib/runbook/programRun'); require('./lib/config/programConfig')"], 3)],
            ["python: import alembic and sqlalchemy (each alembic call)", fixedCost(FIXTURE_PYTHON, ["-c", "import alembic.config, sqlalchemy"])],
            ["bash scripts/ensure-engine.sh (each npm run)", fixedCost("bash", ["scripts/ensure-engine.sh"], 3)],
            ["bash scripts/build-tools.sh (each npm run)", fixedCost("bash", ["scripts/build-tools.sh"], 3)],
        ] as const;
        const sections = [
            `profile: ${flags.rounds} rounds after one warm-up; ${flags.datasets} datasets, ${flags.models} reranker models, ${flags["embedding-rows"]} embedding rows`,
            `machine: ${machineLine(loadBefore)}`,
            "",
            `fixed costs, median of 3-5\n${table([["what", "median"], ...fixed.map(([what, ms]) => [what, `${(ms / 1000).toFixed(2)} s`])])}`,
            ...Object.entries(runs).map(([name, phases]) => `\n${mediansTable(name, phases)}`),
        ];
        process.stdout.write(`${sections.join("\n")}\n`);
    } finally {
        await stack?.remove().catch((err: Error) => say(`removing the stack: ${err.message}`));
        await cluster.stop();
        removeNow(workDir);
    }
}

main().catch((err: Error) => {
    say(err.message);
    process.exit(1);
});
