import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { withoutDependencyFrames } from "../../lib/process/plainErrors";

describe("program errors the SDK formats", () => {
    it("lose their frames under node_modules/, keep the message and the program's own", () => {
        const stack = "Error: m\n    at f (/x/node_modules/@pulumi/pulumi/resource.js:1:1)\n    at g (/p/index.ts:3:4)\n    at h (C:\\x\\node_modules\\a.js:1:1)";
        expect(withoutDependencyFrames(stack)).toBe("Error: m\n    at g (/p/index.ts:3:4)");
    });

    it("reach a handler registered before (as the SDK's is) already stripped", () => {
        // The SDK registers its uncaughtException handler before the program loads; ours must still run first.
        const program = `
            process.on("uncaughtException", (err) => { process.stdout.write(JSON.stringify(err.stack)); process.exit(0); });
            require(${JSON.stringify(path.resolve(__dirname, "../../lib/process/plainErrors.ts"))}).reportProgramErrorsPlainly();
            const e = new Error("the database does not answer");
            e.stack = "Error: the database does not answer\\n    at f (/x/node_modules/@pulumi/pulumi/runtime/resource.js:1:1)";
            throw e;
        `;
        const result = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", program], { encoding: "utf8" });
        expect(result.status, result.stderr).toBe(0);
        const seen = JSON.parse(result.stdout) as string;
        expect(seen).toContain("Error: the database does not answer");
        expect(seen).not.toContain("node_modules");
    });
});
