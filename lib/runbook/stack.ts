/**
 * Opens a stack of this project through the Automation API, with the
 * environment scripts/with-engine.sh sets (engine, backend, passphrase), and
 * the few state edits the rollback, the restore and `recover` make.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { drillConfigFile, drillWorkDir, isDrillStack } from "../config/drillConfig";
import { PROJECT_ROOT, resolveStackConfig, StackConfig } from "../config/stackConfig";

export { PROJECT_ROOT };

/** A drill stack runs in its working folder .state/drill/<stack> (lib/config/drillConfig.ts), never on the tracked template. */
function stackWorkDir(stackName: string): string {
    return isDrillStack(stackName) && fs.existsSync(drillConfigFile(stackName)) ? drillWorkDir(stackName) : PROJECT_ROOT;
}

export async function openStack(stackName: string, workDir = stackWorkDir(stackName)): Promise<Stack> {
    try {
        return await LocalWorkspace.selectStack({ stackName, workDir });
    } catch (err) {
        throw new Error(`cannot open stack "${stackName}": ${(err as Error).message.split("\n").find((l) => l.trim()) ?? ""}; list stacks with \`npm run pulumi -- stack ls\``);
    }
}

/** `<project>/<stack>`, as the program names its rollout lock. */
export async function stackId(stack: Stack): Promise<string> {
    return `${(await stack.workspace.projectSettings()).name}/${stack.name.split("/").pop()}`;
}

/** The stack's config, secrets decrypted in memory only. */
export async function stackConfig(stack: Stack): Promise<StackConfig> {
    const all = await stack.getAllConfig();
    return resolveStackConfig((key) => all[key]?.value);
}

interface StateResource {
    urn: string;
    type: string;
    outputs?: Record<string, unknown>;
}

/** URNs of the stack's resources of one type, e.g. protea:rollout:Migration. */
export async function urnsOfType(stack: Stack, type: string): Promise<string[]> {
    const state = await stack.exportStack();
    const resources: StateResource[] = state.deployment?.resources ?? [];
    return resources.filter((r) => r.type === type).map((r) => r.urn);
}

/** Removes the Migration and everything that depends on it from the state (the database no longer has them). */
export async function forgetMigration(stack: Stack, log: (line: string) => void): Promise<void> {
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
 */
export async function recordOutcome(stack: Stack, changes: Record<string, unknown>): Promise<void> {
    const state = await stack.exportStack();
    const root = (state.deployment?.resources as StateResource[] | undefined)?.find((r) => r.type === "pulumi:pulumi:Stack");
    if (!root) return;
    const outputs = { ...(root.outputs ?? {}) };
    for (const key of MIGRATION_OUTPUTS) delete outputs[key];
    const stepMillis = outputs.stepMillis as Record<string, unknown> | undefined;
    if (stepMillis) outputs.stepMillis = { ...stepMillis, upgrade: undefined, backfillDryRun: undefined, backfillApply: undefined };
    root.outputs = { ...outputs, ...changes };
    await stack.importStack(state);
}
