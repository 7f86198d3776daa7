import { execFileSync } from "node:child_process";

let checked = false;

/**
 * Tests that drive the engine call this first: without a working engine they
 * would fail obscurely, so stop at once and say what to run.
 */
export function requireEngine(): void {
    if (checked) return;
    const hint = "integration tests need the project's Pulumi engine: run them with `npm test` (it builds the engine), or `npm run setup` first";
    let version: string;
    try {
        version = execFileSync("pulumi", ["version"], { encoding: "utf8" }).trim();
    } catch {
        throw new Error(`no \`pulumi\` on PATH. ${hint}`);
    }
    const plugins = execFileSync("pulumi", ["plugin", "ls"], { encoding: "utf8" });
    if (!/^command\s+resource\s+1\.2\.1\b/m.test(plugins)) {
        throw new Error(`pulumi ${version} has no command provider 1.2.1 in its plugin cache. ${hint}`);
    }
    if (process.env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION !== "true") {
        throw new Error(`the engine's offline settings are missing. ${hint}`);
    }
    checked = true;
}
