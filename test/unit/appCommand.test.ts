import { describe, expect, it } from "vitest";
import { runAppCommand, scrub, secretForms } from "../../lib/runbook/appCommand";

describe("what an application's command prints", () => {
    it("loses the password, in any form a URL carries it, and every URL's userinfo", () => {
        const secrets = secretForms("p@ss:w/rd");
        const text = "db = postgresql+psycopg://protea:p%40ss%3Aw%2Frd@db:5432/protea\npassword p@ss:w/rd\nhttps://user@example.org/x";
        const out = scrub(text, secrets);
        expect(out).not.toContain("p@ss:w/rd");
        expect(out).not.toContain("p%40ss%3Aw%2Frd");
        expect(out).toContain("postgresql+psycopg://[redacted]@db:5432/protea");
        expect(out).toContain("https://[redacted]@example.org/x");
    });

    it("reaches Pulumi as a head, a count and a tail, and whole (scrubbed) in its log file", async () => {
        const echoed: string[] = [];
        const log = `${require("node:os").tmpdir()}/app-command-${process.pid}.log`;
        const result = await runAppCommand({
            label: "t",
            command: "for i in $(seq 1 100); do echo line $i secret-value; done",
            cwd: "/",
            env: process.env,
            secrets: ["secret-value"],
            timeoutMs: 60_000,
            logFile: log,
            echo: (l) => echoed.push(l),
        });
        expect(result.code).toBe(0);
        expect(result.lines).toBe(100);
        expect(echoed.length).toBeLessThanOrEqual(31);
        expect(echoed.some((l) => l.includes("70 lines not shown"))).toBe(true);
        const whole = require("node:fs").readFileSync(log, "utf8");
        expect(whole.split("\n").filter(Boolean)).toHaveLength(100);
        expect(whole).not.toContain("secret-value");
        require("node:fs").rmSync(log);
    });

    it("is stopped past its timeout, with its children", async () => {
        const result = await runAppCommand({ label: "t", command: "sleep 30 & sleep 30; wait", cwd: "/", env: process.env, secrets: [], timeoutMs: 300, echo: () => undefined });
        expect(result.timedOut).toBe(true);
        expect(result.code).not.toBe(0);
    });

    it("is stopped when the step running it is killed (a provider cancels with SIGKILL), by a watchdog that outlives the step", async () => {
        const { spawn } = await import("node:child_process");
        const fs = await import("node:fs");
        const path = await import("node:path");
        // A sleep no other process runs: its argument is its mark.
        const duration = `300.${process.pid}${Date.now() % 100000}`;
        const step = spawn(
            process.execPath,
            ["-r", "ts-node/register/transpile-only", "-e", `require(${JSON.stringify(path.resolve(__dirname, "../../lib/runbook/appCommand.ts"))}).runAppCommand({ label: "t", command: "sleep ${duration}; echo done", cwd: "/", env: process.env, secrets: [], timeoutMs: 600000, echo: () => undefined })`],
            { stdio: "ignore" },
        );
        const running = () =>
            fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
                try {
                    return fs.readFileSync(`/proc/${p}/cmdline`, "utf8") === `sleep\0${duration}\0`;
                } catch {
                    return false;
                }
            });
        // Bounded waits, not timing assertions: ts-node's start and the watchdog's 0.2 s polls are slow on a busy machine.
        for (let i = 0; i < 600 && running().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
        expect(running().length).toBeGreaterThan(0);
        step.kill("SIGKILL");
        for (let i = 0; i < 300 && running().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
        const left = running();
        for (const pid of left) process.kill(Number(pid), "SIGKILL");
        expect(left).toEqual([]);
    }, 90_000);
});
