/**
 * `npm run drill` end to end, as a newcomer runs it: a local clone from the
 * generated sample, the full rollout, rollback and restore, teardown, and the
 * report. Runs on its own stack and backend so it never touches `drill`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { findFreePort } from "../../lib/postgresCluster";
import { PROJECT_ROOT } from "./helpers/fixture";
import { npmRun } from "./helpers/engine";
import { requireEngine } from "./helpers/requireEngine";

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-drill-"));
const stackName = `drill-test-${randomBytes(4).toString("hex")}`;
const configFile = path.join(PROJECT_ROOT, `Pulumi.${stackName}.yaml`);
const env = { PULUMI_BACKEND_URL: `file://${path.join(workDir, "backend")}`, PULUMI_CONFIG_PASSPHRASE: "drill-test-passphrase" };

afterAll(async () => {
    try {
        const stack = await LocalWorkspace.selectStack({ stackName, workDir: PROJECT_ROOT }, { envVars: env });
        await stack.destroy().catch(() => undefined);
        await stack.workspace.removeStack(stackName, { force: true });
    } catch {
        // never created
    }
    fs.rmSync(configFile, { force: true });
    fs.rmSync(workDir, { recursive: true, force: true });
});

describe("npm run drill", () => {
    it("rehearses the rollout on a throwaway clone, every check PASS, and leaves nothing running", async () => {
        requireEngine();
        fs.mkdirSync(path.join(workDir, "backend"));
        // The cluster runs as the postgres OS user, which must traverse to its directory.
        fs.chmodSync(workDir, 0o755);
        const stateDir = path.join(workDir, "cluster");
        // The committed drill config, on a free port and with its files in the temp dir.
        const config = fs
            .readFileSync(path.join(PROJECT_ROOT, "Pulumi.drill.yaml"), "utf8")
            .replace(/drill:port: "\d+"/, `drill:port: "${await findFreePort()}"`)
            .replace(/rollout:backupDir: .*/, `rollout:backupDir: ${path.join(workDir, "backups")}\n  drill:stateDir: ${stateDir}`);
        fs.writeFileSync(configFile, config);

        const run = await npmRun(PROJECT_ROOT, "drill", ["--stack", stackName, "--with-restore", "--report-dir", path.join(workDir, "reports")], env);
        expect(run.code, run.output).toBe(0);
        expect(run.output).toMatch(/drill: \[1\/8\] stack/);

        const reports = fs.readdirSync(path.join(workDir, "reports"));
        expect(reports.filter((f) => /^drill-report-.*\.(md|json)$/.test(f))).toHaveLength(2);
        const report = JSON.parse(fs.readFileSync(path.join(workDir, "reports", reports.find((f) => f.endsWith(".json"))!), "utf8"));
        expect(report.checks.length).toBeGreaterThanOrEqual(12);
        expect(report.checks.filter((c: { pass: boolean }) => !c.pass)).toEqual([]);
        expect(report.rows).toEqual({ dataset: 2, reranker_model: 51 });
        expect(report.backupBytes).toBeGreaterThan(0);
        for (const step of report.steps) expect(step.millis, step.step).toBeGreaterThan(0);
        expect(report.steps.find((s: { step: string }) => s.step.startsWith("alembic upgrade")).runbook).toBe("2.85s");
        const markdown = fs.readFileSync(path.join(workDir, "reports", reports.find((f) => f.endsWith(".md"))!), "utf8");
        expect(markdown).toContain("| alembic downgrade to the expected head |");
        expect(markdown).toContain("Checks: ");

        // Nothing left behind: no cluster directory, no server on the clone's port.
        expect(fs.existsSync(stateDir)).toBe(false);
        const stack = await LocalWorkspace.selectStack({ stackName, workDir: PROJECT_ROOT }, { envVars: env });
        const resources = (await stack.exportStack()).deployment.resources ?? [];
        expect(resources.filter((r: { type: string }) => r.type !== "pulumi:pulumi:Stack")).toEqual([]);
    });
});
