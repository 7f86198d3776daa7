import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { requireEngine } from "./requireEngine";

export interface TestStack {
    stack: Stack;
    /** Backend and passphrase, for child processes (e.g. `npm run rollback`) that open the same stack. */
    env: Record<string, string>;
    /** Removes the stack, whatever it still holds, with its config file and its temporary backend. */
    remove(): Promise<void>;
}

// One CLI per test process: each workspace would otherwise run `pulumi version` again.
let pulumiCommand: Promise<PulumiCommand> | undefined;

/**
 * A stack of the program in `workDir` on a fresh file:// backend in a temp dir,
 * so a test never sees another test's state.
 */
export async function newTestStack(workDir: string, config: Record<string, { value: string; secret?: boolean }> = {}): Promise<TestStack> {
    requireEngine();
    const backendDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-backend-"));
    const stackName = `test-${randomBytes(4).toString("hex")}`;
    const env = { PULUMI_BACKEND_URL: `file://${backendDir}`, PULUMI_CONFIG_PASSPHRASE: "integration-test-passphrase" };
    pulumiCommand ??= PulumiCommand.get();
    const stack = await LocalWorkspace.createStack({ stackName, workDir }, { envVars: env, pulumiCommand: await pulumiCommand });
    await stack.setAllConfig(config);
    return {
        stack,
        env,
        async remove() {
            try {
                // No destroy first: every file throws its database away (its
                // cluster or container); what matters here is that no test
                // leaves a stack, its backend or its config file.
                await stack.workspace.removeStack(stackName, { force: true });
            } finally {
                fs.rmSync(path.join(workDir, `Pulumi.${stackName}.yaml`), { force: true });
                fs.rmSync(backendDir, { recursive: true, force: true });
            }
        },
    };
}

/** Runs an npm script the way an operator would, in `cwd`, with `env` (e.g. a test stack's backend). */
export function npmRun(cwd: string, script: string, args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
    return new Promise((resolve) => {
        const child = spawn("npm", ["run", "--silent", script, "--", ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("close", (code) => resolve({ code: code ?? 1, output }));
    });
}
