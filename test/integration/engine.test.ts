import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { newTestStack, TestStack } from "./helpers/engine";

const programDir = path.resolve(__dirname, "../fixtures/engine-smoke");

describe("the Pulumi engine (CLI, Node.js language host, command provider)", () => {
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-smoke-"));
    const target = path.join(workDir, "marker.txt");
    let testStack: TestStack | undefined;

    afterAll(async () => {
        await testStack?.remove();
        fs.rmSync(workDir, { recursive: true, force: true });
    });

    it("creates a file on up and removes it on destroy", async () => {
        testStack = await newTestStack(programDir, {
            target: { value: target },
            content: { value: "hello from local.Command" },
        });

        const up = await testStack.stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(fs.readFileSync(target, "utf8")).toBe("hello from local.Command");
        expect(up.outputs.written.value).toBe("hello from local.Command");
        expect(up.outputs.path.value).toBe(target);

        const destroy = await testStack.stack.destroy();
        expect(destroy.summary.result).toBe("succeeded");
        expect(fs.existsSync(target)).toBe(false);
    });
});
