import { beforeEach, describe, expect, it } from "vitest";
import { createRollout } from "../../components";
import { RawConfig } from "../../lib/config/config";
import { parseRolloutConfig } from "../../lib/config/parseRolloutConfig";
import { rerunsFor, RolloutPhase } from "../../lib/runbook/rolloutPhase";
import { registered, registrations, settle, STDOUT_BY_SUFFIX, valueOf } from "./helpers/mocks";
import { ALL_COMMAND_INPUTS } from "../../components/types";

const PASSWORD = "pw-that-must-not-leak";
const DB_URL = `postgresql+psycopg://protea:${PASSWORD}@127.0.0.1:5432/protea`;

async function build(raw: RawConfig = {}, phase: RolloutPhase = "pending") {
    registrations.length = 0;
    const config = parseRolloutConfig({ dbUrl: DB_URL, ...raw }, "/home/op", "/checkout/of/the/project");
    const rollout = createRollout(config, DB_URL, { stack: "rollout/prod", reruns: rerunsFor(phase, new Date("2026-11-26T00:00:00Z")) });
    await valueOf(rollout.verification.parity);
    await settle();
    return rollout;
}

const STEPS = ["preflight", "backup", "quiesce", "migration", "backfill", "verification", "resume"];
const commands = () => registrations.filter((r) => r.type === "command:local:Command");

describe("the rollout graph", () => {
    beforeEach(() => {
        registrations.length = 0;
    });

    it("has one component per runbook step, each ordered after every earlier step", async () => {
        await build({ pauseWriters: "systemctl stop protea-worker", resumeWriters: "systemctl start protea-worker" });
        const components = STEPS.map((step) => registered(step));
        expect(components.map((c) => c.type)).toEqual(STEPS.map((s) => `protea:rollout:${s[0].toUpperCase()}${s.slice(1)}`));
        // A dependency on a component reaches the engine as one on its commands.
        components.forEach((component, i) => {
            const earlierCommands = registrations.filter((r) => components.slice(0, i).some((c) => c.urn === r.parent));
            expect(component.dependencies.sort()).toEqual(earlierCommands.map((c) => c.urn).sort());
        });
        for (const [child, parent] of [["preflight-gate", "preflight"], ["backup-dump", "backup"], ["quiesce-pause", "quiesce"], ["migration-upgrade", "migration"], ["backfill-dry-run", "backfill"], ["backfill-apply", "backfill"], ["verification-gate", "verification"], ["resume-writers", "resume"]]) {
            expect(registered(child).type).toBe("command:local:Command");
            expect(registered(child).parent).toBe(registered(parent).urn);
        }
        expect(registered("backfill-apply").dependencies).toContain(registered("backfill-dry-run").urn);
    });

    it("gates, upgrades, checks and downgrades in one invocation of the tool per action, deleting before any replacement", async () => {
        await build();
        const migration = registered("migration-upgrade");
        expect(migration.deleteBeforeReplace).toBe(true);
        expect(migration.inputs.create).toMatch(/protea-rollout migrate --direction up --stack rollout\/prod --app-dir '~\/Thesis2\/repositories\/PROTEA' --alembic 'poetry run alembic' --expected-head 9d2fb5a07e4c --target-revision a3c1d8e2f4b6 --columns /);
        expect(migration.inputs.update).toMatch(/protea-rollout migrate --direction check /);
        expect(migration.inputs.delete).toMatch(/protea-rollout migrate --direction down .* --lock-timeout 2s --lock-retries 10 --lock-budget 2min --timeout 4h$/);
    });

    it("stores no path of the checkout, of node or of this machine in any command", async () => {
        await build({ pauseWriters: "pause", resumeWriters: "resume", appDir: "app", backupDir: "backups" });
        for (const c of commands()) {
            const stored = JSON.stringify([c.inputs.create, c.inputs.update, c.inputs.delete]);
            expect(stored).not.toContain("/checkout/of/the/project");
            expect(stored).not.toContain(process.execPath);
            expect(stored).not.toContain("/home/op");
            expect(stored).toContain("protea-rollout ");
        }
        expect(registered("backup-dump").inputs.create).toContain("--dir backups ");
    });

    it("passes rollout:backupCompression to the backup, always, so its stored command is the same on every run", async () => {
        await build();
        expect(registered("backup-dump").inputs.create).toMatch(/protea-rollout backup --dir '~\/Thesis2\/backups' --label pre-t16 --compression 1 --access docker-exec --container protea-postgres-1 --db-user protea --db-name protea --timeout 4h$/);
        const first = registered("backup-dump").inputs.create;
        await build();
        expect(registered("backup-dump").inputs.create).toBe(first);
        await build({ backupCompression: "0" });
        expect(registered("backup-dump").inputs.create).toContain(" --label pre-t16 --compression 0 ");
    });

    it("keeps every dump: the backup is retained on delete, has no delete command and is protected by default", async () => {
        await build();
        expect(registered("backup-dump").retainOnDelete).toBe(true);
        expect(registered("backup-dump").inputs.delete).toBeUndefined();
        expect(registered("backup").protect).toBe(true);
        await build({ protect: "false" });
        expect(registered("backup").protect).toBe(false);
    });

    it("runs the gate, the backup and the migration again whenever the database shows the migration missing", async () => {
        await build({}, "pending");
        for (const name of ["preflight-gate", "backup-dump", "migration-upgrade"]) {
            expect(registered(name).ignoreChanges, name).toEqual([]);
            expect(registered(name).inputs.stdin).toBe("rerun pending 2026-11-26T00:00:00.000Z");
        }
        await build({}, "complete");
        expect(registered("preflight-gate").ignoreChanges).toContain("create");
        expect(registered("backup-dump").ignoreChanges).toContain("environment");
        // The migration's stored commands and environment stay current (a password change reaches the rollback).
        expect(registered("migration-upgrade").ignoreChanges).toEqual(["stdin"]);
    });

    it("finishes the backfill, verification and the writers' resume again until every row is populated", async () => {
        await build({ pauseWriters: "p", resumeWriters: "r" }, "incomplete");
        expect(registered("migration-upgrade").ignoreChanges).toEqual(["stdin"]);
        for (const name of ["quiesce-pause", "backfill-apply", "verification-gate", "resume-writers"]) expect(registered(name).ignoreChanges, name).toEqual([]);
        await build({ pauseWriters: "p", resumeWriters: "r" }, "complete");
        for (const name of ["backfill-apply", "verification-gate"]) expect(registered(name).ignoreChanges, name).toEqual(["stdin"]);
        // The writers' pause and resume are frozen once done: no input change pauses a finished rollout's writers again.
        for (const name of ["quiesce-pause", "resume-writers"]) expect(registered(name).ignoreChanges, name).toEqual(ALL_COMMAND_INPUTS);
    });

    it("resumes the writers when a step after the pause fails, unless resumeOnFailure is false", async () => {
        await build({ pauseWriters: "p", resumeWriters: "systemctl start w" });
        for (const name of ["migration-upgrade", "backfill-apply", "verification-gate"]) {
            expect(registered(name).inputs.create, name).toContain("--resume-writers 'systemctl start w' --resume-on-failure true");
        }
        expect(registered("migration-upgrade").inputs.delete).not.toContain("--resume-writers");
        await build({ pauseWriters: "p", resumeWriters: "r", resumeOnFailure: "false" });
        expect(registered("backfill-apply").inputs.create).toContain("--resume-on-failure false");
        await build({ resumeWriters: "r" });
        expect(registered("backfill-apply").inputs.create).not.toContain("--resume-writers");
    });

    it("runs the backfill dry run, then the apply with --batch-size; --force only when configured", async () => {
        const rollout = await build({ batchSize: "250" });
        expect(registered("backfill-dry-run").inputs.create).toMatch(/protea-rollout backfill --mode dry-run .*--backfill 'poetry run python scripts\/backfill_schema_sha_v2\.py'/);
        expect(registered("backfill-apply").inputs.create).toMatch(/--mode apply .* --batch-size 250( |$)/);
        expect(registered("backfill-apply").inputs.create).not.toContain("--force");
        expect(registered("backfill-apply").inputs.delete).toBeUndefined();
        // The output is the step's own result line, parsed: whatever the step printed, not a value the program makes up.
        const { mode: _mode, ...printed } = JSON.parse(STDOUT_BY_SUFFIX["-apply"]);
        expect(await valueOf(rollout.backfill.applied)).toEqual(printed);
        await build({ forceBackfill: "true" });
        expect(registered("backfill-apply").inputs.create).toMatch(/--batch-size 100 --force/);
    });

    it("re-runs the backfill when the migration is re-applied, and verification when the backfill re-runs", async () => {
        await build();
        expect(registered("backfill-apply").inputs.triggers).toEqual(["migration-upgrade-id"]);
        expect(registered("verification-gate").inputs.triggers).toEqual(["backfill-apply-id 7"]);
    });

    it("passes the database URL only in the environment, never in a command string; outputs that may carry a child's words are secret", async () => {
        await build({ pgAccess: "url", pauseWriters: "true", resumeWriters: "true" });
        expect(commands().length).toBeGreaterThanOrEqual(8);
        for (const c of commands()) {
            expect(JSON.stringify([c.inputs.create, c.inputs.delete, c.inputs.update, c.inputs.stdin])).not.toContain(PASSWORD);
        }
        const environment = JSON.stringify(registered("migration-upgrade").inputs.environment);
        expect(environment).toContain(PASSWORD);
        // …and marked secret (Pulumi's secret signature), so state holds it encrypted.
        expect(environment).toContain("1b47061264138c4ac30d75fd1eb44270");
        for (const name of ["migration-upgrade", "backfill-dry-run", "backfill-apply", "quiesce-pause", "resume-writers"]) {
            expect(registered(name).additionalSecretOutputs, name).toEqual(["stdout", "stderr"]);
        }
    });

    it("pauses nothing when no pause command is configured", async () => {
        await build();
        expect(registrations.some((r) => r.name === "quiesce-pause")).toBe(false);
        expect(registrations.some((r) => r.name === "resume-writers")).toBe(false);
    });
});
