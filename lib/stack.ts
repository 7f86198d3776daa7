/**
 * Opens a stack of this project through the Automation API, with the
 * environment scripts/with-engine.sh sets (engine, backend, passphrase).
 */
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { PROJECT_ROOT, resolveStackConfig, StackConfig } from "./stackConfig";

export { PROJECT_ROOT };

export async function openStack(stackName: string, workDir = PROJECT_ROOT): Promise<Stack> {
    try {
        return await LocalWorkspace.selectStack({ stackName, workDir });
    } catch (err) {
        throw new Error(`cannot open stack "${stackName}": ${(err as Error).message.split("\n").find((l) => l.trim()) ?? ""}; list stacks with \`npm run pulumi -- stack ls\``);
    }
}

/** The stack's config, secrets decrypted in memory only. */
export async function stackConfig(stack: Stack): Promise<StackConfig> {
    const all = await stack.getAllConfig();
    return resolveStackConfig((key) => all[key]?.value);
}

/** URNs of the stack's resources of one type, e.g. protea:rollout:Migration. */
export async function urnsOfType(stack: Stack, type: string): Promise<string[]> {
    const state = await stack.exportStack();
    const resources: { urn: string; type: string }[] = state.deployment?.resources ?? [];
    return resources.filter((r) => r.type === type).map((r) => r.urn);
}
