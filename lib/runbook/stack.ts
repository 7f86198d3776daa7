/**
 * The stack operations of the rollback, the restore and `recover`, through
 * the pulumi CLI directly, with the environment scripts/with-engine.sh sets
 * (engine, backend, passphrase): no Automation API to load, no `stack
 * select`, no history read after a destroy. State passes through pipes only,
 * never a file. The drill, which follows the engine's events, keeps the
 * Automation API; both are a StackHandle to the helpers here.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ConfigMap, Deployment } from "@pulumi/pulumi/automation";
import { drillConfigFile, drillWorkDir, isDrillStack } from "../config/drillConfig";
import { lineForwarder } from "../process/processes";
import { pauseToken, RESUMED_OUTPUT, writersState } from "./interruptedRun/pausedWriters";
import { PROJECT_ROOT, resolveStackConfig, StackConfig } from "../config/stackConfig";

export { PROJECT_ROOT };

/** What the helpers below need of a stack: the CLI's (CliStack) or the Automation API's. */
export interface StackHandle {
    readonly name: string;
    exportStack(): Promise<Deployment>;
    getAllConfig(): Promise<ConfigMap>;
    readonly workspace: { readonly workDir: string; projectSettings(): Promise<{ name: string }> };
}

/** A drill stack runs in its working folder .state/drill/<stack> (lib/config/drillConfig.ts), never on the tracked template. */
function stackWorkDir(stackName: string): string {
    return isDrillStack(stackName) && fs.existsSync(drillConfigFile(stackName)) ? drillWorkDir(stackName) : PROJECT_ROOT;
}

/** The `name:` of the project file in `workDir`. */
function projectName(workDir: string): string {
    const file = path.join(workDir, "Pulumi.yaml");
    const name = /^name:\s*["']?([^"'\s#]+)/m.exec(fs.readFileSync(file, "utf8"))?.[1];
    if (!name) throw new Error(`${file} names no project`);
    return name;
}

export interface DestroyOptions {
    target: string[];
    targetDependents: boolean;
}

/** One stack of this project, every operation one `pulumi … --stack <name>` run. */
export class CliStack implements StackHandle {
    readonly workspace: { readonly workDir: string; projectSettings(): Promise<{ name: string }> };

    constructor(
        readonly name: string,
        workDir: string,
        /** Each pulumi run in a process group of its own, out of reach of the terminal's Ctrl-C (the guard's cleanup after one). */
        private readonly detached = false,
    ) {
        this.workspace = { workDir, projectSettings: async () => ({ name: projectName(workDir) }) };
    }

    /** Runs pulumi; its stdout is returned unless `show` streams it to the terminal. */
    private pulumi(args: string[], options: { input?: string; show?: boolean } = {}): Promise<string> {
        const argv = [...args, "--stack", this.name, "--non-interactive"];
        return new Promise((resolve, reject) => {
            const child = spawn("pulumi", argv, { cwd: this.workspace.workDir, stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"], detached: this.detached });
            let stdout = "";
            let stderr = "";
            // Shown through this process's streams, so its output scrubber sees every line (lib/process/scrub.ts).
            const shown = options.show ? { out: lineForwarder(process.stdout), err: lineForwarder(process.stderr) } : undefined;
            child.stdout?.setEncoding("utf8").on("data", (d: string) => (shown ? shown.out.push(d) : (stdout += d)));
            child.stderr?.setEncoding("utf8").on("data", (d: string) => {
                stderr += d;
                shown?.err.push(d);
            });
            child.on("error", (err) => reject(new Error(`cannot run pulumi: ${err.message}; run through scripts/with-engine.sh (npm run …)`)));
            child.on("close", (code) => {
                shown?.out.flush();
                shown?.err.flush();
                if (code === 0) return resolve(stdout);
                // The error, not a warning printed before it.
                const lines = stderr.split("\n").filter((l) => l.trim());
                const reason = lines.find((l) => /^error:/.test(l.trim())) ?? lines[0] ?? "";
                if (/no stack named/.test(stderr)) return reject(new Error(`cannot open stack "${this.name}": ${reason}; list stacks with \`npm run pulumi -- stack ls\``));
                reject(new Error(`pulumi ${args.slice(0, 2).join(" ")} failed (exit ${code})${options.show ? "; see above" : `: ${reason}`}`));
            });
            child.stdin?.end(options.input);
        });
    }

    /** The state; secrets stay encrypted unless `showSecrets` (then they arrive as plaintext, in memory only). */
    async exportStack(options: { showSecrets?: boolean } = {}): Promise<Deployment> {
        return JSON.parse(await this.pulumi(["stack", "export", ...(options.showSecrets ? ["--show-secrets"] : [])]));
    }

    /** Replaces the state with `state`, through stdin. */
    async importStack(state: Deployment): Promise<void> {
        await this.pulumi(["stack", "import"], { input: JSON.stringify(state) });
    }

    /** The config, secrets decrypted into this process's memory. */
    async getAllConfig(): Promise<ConfigMap> {
        return JSON.parse(await this.pulumi(["config", "--json", "--show-secrets"]));
    }

    /** The stack's outputs, secrets shown. */
    async outputs(): Promise<Record<string, unknown>> {
        return JSON.parse(await this.pulumi(["stack", "output", "--json", "--show-secrets"]));
    }

    /** `pulumi destroy` of the targets, its display on the terminal; `previewOnly` changes nothing. */
    async destroy(options: DestroyOptions & { previewOnly?: boolean }): Promise<void> {
        const targets = [...options.target.flatMap((urn) => ["--target", urn]), ...(options.targetDependents ? ["--target-dependents"] : [])];
        await this.pulumi(["destroy", ...(options.previewOnly ? ["--preview-only"] : ["--yes", "--skip-preview"]), ...targets], { show: true });
    }
}

/** A stack of this project; whether it exists shows at its first operation. */
export function openStack(stackName: string, workDir = stackWorkDir(stackName), detached = false): CliStack {
    return new CliStack(stackName, workDir, detached);
}

/** `<project>/<stack>`, as the program names its rollout lock. */
export async function stackId(stack: StackHandle): Promise<string> {
    return `${(await stack.workspace.projectSettings()).name}/${stack.name.split("/").pop()}`;
}

/** The stack's config, secrets decrypted in memory only. */
export async function stackConfig(stack: StackHandle): Promise<StackConfig> {
    const all = await stack.getAllConfig();
    return resolveStackConfig((key) => all[key]?.value);
}

interface StateResource {
    urn: string;
    type: string;
    outputs?: Record<string, unknown>;
}

/** URNs of the stack's resources of one type, e.g. protea:rollout:Migration. */
export async function urnsOfType(stack: StackHandle, type: string): Promise<string[]> {
    return urnsIn((await stack.exportStack()).deployment, type);
}

/** URNs of a deployment's resources of one type. */
export function urnsIn(deployment: Deployment["deployment"] | undefined, type: string): string[] {
    const resources: StateResource[] = deployment?.resources ?? [];
    return resources.filter((r) => r.type === type).map((r) => r.urn);
}

/** Removes the Migration and everything that depends on it from the state (the database no longer has them). */
export async function forgetMigration(stack: StackHandle, log: (line: string) => void): Promise<void> {
    for (const urn of await urnsOfType(stack, "protea:rollout:Migration")) {
        log(`removing ${urn} and its dependents from the state (the database no longer has them)`);
        execFileSync("pulumi", ["state", "delete", urn, "--target-dependents", "--yes", "--stack", stack.name], { stdio: ["ignore", "ignore", "inherit"], cwd: stack.workspace.workDir });
    }
}

/** Outputs that describe the migration's results: gone once it is rolled back or restored over. */
const MIGRATION_OUTPUTS = ["backfillDryRun", "backfillApplied", "nullCounts", "parity", "preflightReport"];

/**
 * Makes the stack's outputs tell the truth after a rollback or a restore,
 * which run no program: the migration's results are removed and `changes`
 * (what happened, when) recorded. Stack outputs otherwise change on `up` only.
 * The state round-trips with its secrets still encrypted.
 */
export async function recordOutcome(stack: CliStack, changes: Record<string, unknown>): Promise<void> {
    await changeStackOutputs(stack, (outputs) => {
        for (const key of MIGRATION_OUTPUTS) delete outputs[key];
        const stepMillis = outputs.stepMillis as Record<string, unknown> | undefined;
        if (stepMillis) outputs.stepMillis = { ...stepMillis, upgrade: undefined, backfillDryRun: undefined, backfillApply: undefined };
        return { ...outputs, ...changes };
    });
}

/**
 * Before a rollback, a restore or recover removes the migration with its
 * dependents: the Resume step goes with them, the pause stays. When the pause
 * was resumed, the state records it first, so it never reads as paused after.
 */
export async function keepWritersResumed(stack: CliStack, deployment: Deployment["deployment"] | undefined): Promise<void> {
    const resources: StateResource[] = deployment?.resources ?? [];
    const byResumeStep = resources.some((r) => r.type === "command:local:Command" && r.urn.includes("protea:rollout:Resume$"));
    // An import would drop operations an interrupted run left in flight, which recover needs.
    const inFlight = (deployment?.pending_operations ?? []).length > 0;
    if (byResumeStep && !inFlight && writersState(deployment) === "not-paused") await recordWritersResumed(stack, "the rollout that paused them");
}

/**
 * Records that the writers a run paused were resumed outside an update (the
 * guard of `npm run pulumi -- up`, `recover`): the state then tells any
 * checkout they are not paused (lib/runbook/interruptedRun/pausedWriters.ts).
 */
export async function recordWritersResumed(stack: CliStack, by: string): Promise<void> {
    await changeStackOutputs(stack, (outputs, deployment) => ({ ...outputs, [RESUMED_OUTPUT]: { pause: pauseToken(deployment), by, at: new Date().toISOString() } }));
}

/** The stack's outputs changed by `change`, through export and import (secrets stay encrypted). */
async function changeStackOutputs(stack: CliStack, change: (outputs: Record<string, unknown>, deployment: Deployment["deployment"]) => Record<string, unknown>): Promise<void> {
    const state = await stack.exportStack();
    const root = (state.deployment?.resources as StateResource[] | undefined)?.find((r) => r.type === "pulumi:pulumi:Stack");
    if (!root) return;
    root.outputs = change({ ...(root.outputs ?? {}) }, state.deployment);
    await stack.importStack(state);
}
