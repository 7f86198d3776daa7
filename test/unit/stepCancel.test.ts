import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");

/** Pids whose command line is exactly `argv`. */
function running(argv: string[]): number[] {
    const wanted = `${argv.join("\0")}\0`;
    return fs
        .readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
            try {
                return fs.readFileSync(`/proc/${p}/cmdline`, "utf8") === wanted;
            } catch {
                return false;
            }
        })
        .map(Number);
}

const waitFor = async (done: () => boolean, tries: number) => {
    for (let i = 0; i < tries && !done(); i++) await new Promise((r) => setTimeout(r, 100));
};

describe("a step cancelled as upstream's provider cancels it", () => {
    it("stops its application command and ends when only its shell is killed (SIGKILL to the shell, not its group)", async () => {
        // A sleep no other process runs: its argument is its mark.
        const duration = `300.${process.pid}${Date.now() % 100000}`;
        const tool = `node -r ts-node/register/transpile-only ${path.join(ROOT, "bin/rollout.ts")} writers --action pause --command 'sleep ${duration}' --timeout 1h`;
        // As a stored command runs: the shell does more than exec the tool, so the tool is its child.
        const shell = spawn("/bin/sh", ["-c", `${tool}; echo after`], { cwd: ROOT, detached: true, stdio: "ignore", env: { ...process.env, PROTEA_DB_URL: "" } });
        // Bounded waits, not timing assertions: ts-node's start is slow on a busy machine.
        await waitFor(() => running(["sleep", duration]).length > 0, 600);
        expect(running(["sleep", duration]).length).toBe(1);
        process.kill(shell.pid!, "SIGKILL");
        await waitFor(() => running(["sleep", duration]).length === 0, 300);
        const left = running(["sleep", duration]);
        for (const pid of left) process.kill(pid, "SIGKILL");
        try {
            process.kill(-shell.pid!, "SIGKILL");
        } catch {
            // The group is gone: the tool ended, as it should.
        }
        expect(left).toEqual([]);
    }, 120_000);
});
