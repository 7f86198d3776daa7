import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { requireEngine } from "./requireEngine";

export interface TestStack {
    stack: Stack;
    /** Destroys what is left and removes the stack and its temporary backend. */
    remove(): Promise<void>;
}

/**
 * A stack of the program in `workDir` on a fresh file:// backend in a temp dir,
 * so a test never sees another test's state.
 */
export async function newTestStack(workDir: string, config: Record<string, { value: string; secret?: boolean }> = {}): Promise<TestStack> {
    requireEngine();
    const backendDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-backend-"));
    const stackName = `test-${randomBytes(4).toString("hex")}`;
    const stack = await LocalWorkspace.createStack(
        { stackName, workDir },
        {
            envVars: {
                PULUMI_BACKEND_URL: `file://${backendDir}`,
                PULUMI_CONFIG_PASSPHRASE: "integration-test-passphrase",
            },
        },
    );
    await stack.setAllConfig(config);
    return {
        stack,
        async remove() {
            try {
                await stack.destroy();
                await stack.workspace.removeStack(stackName);
            } finally {
                fs.rmSync(backendDir, { recursive: true, force: true });
            }
        },
    };
}
