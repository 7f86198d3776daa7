import { beforeEach, describe, expect, it } from "vitest";
import { createRollout } from "../../components";
import { parseRolloutConfig, RawConfig } from "../../lib/config";
import { registered, registrations, settle, valueOf } from "./helpers/mocks";

const PASSWORD = "pw-that-must-not-leak";
const DB_URL = `postgresql+psycopg://protea:${PASSWORD}@127.0.0.1:5432/protea`;

async function build(raw: RawConfig = {}) {
    registrations.length = 0;
    const config = parseRolloutConfig({ dbUrl: DB_URL, ...raw }, "/home/op");
    const rollout = createRollout(config, DB_URL);
    await valueOf(rollout.verification.parity);
    await settle();
    return rollout;
}

const STEPS = ["preflight", "backup", "quiesce", "migration", "backfill", "verification", "resume"];

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
        // Commands are children of their step, named after it.
        for (const [child, parent] of [["preflight-gate", "preflight"], ["backup-dump", "backup"], ["quiesce-pause", "quiesce"], ["migration-upgrade", "migration"], ["backfill-dry-run", "backfill"], ["backfill-apply", "backfill"], ["verification-gate", "verification"], ["resume-writers", "resume"]]) {
            expect(registered(child).type).toBe("command:local:Command");
            expect(registered(child).parent).toBe(registered(parent).urn);
        }
        // The apply waits for the dry run.
        expect(registered("backfill-apply").dependencies).toContain(registered("backfill-dry-run").urn);
    });

    it("upgrades on create and downgrades on delete, deleting before any replacement", async () => {
        await build();
        const migration = registered("migration-upgrade");
        expect(migration.deleteBeforeReplace).toBe(true);
        expect(migration.inputs.create).toMatch(/\( cd \/home\/op\/Thesis2\/repositories\/PROTEA && poetry run alembic upgrade a3c1d8e2f4b6 \);.* && .*tools\/bin\/rollout\.js verify-schema --expect present --columns /);
        expect(migration.inputs.delete).toMatch(/\( cd \/home\/op\/Thesis2\/repositories\/PROTEA && poetry run alembic downgrade 9d2fb5a07e4c \);.* && .*verify-schema --expect absent /);
        expect(migration.inputs.create).toContain("ix_reranker_model_schema_sha_v2");
    });

    it("keeps every dump: the backup is retained on delete and protected by default", async () => {
        await build();
        expect(registered("backup-dump").retainOnDelete).toBe(true);
        expect(registered("backup").protect).toBe(true);
        await build({ protect: "false" });
        expect(registered("backup").protect).toBe(false);
    });

    it("dumps inside the container with docker-exec access, as the runbook does", async () => {
        const rollout = await build();
        expect(registered("backup-dump").inputs.create).toMatch(/tools\/bin\/rollout\.js backup --dir \/home\/op\/Thesis2\/backups --label pre-t16 --access docker-exec --container protea-postgres-1 --db-user protea --db-name protea$/);
        expect(await valueOf(rollout.backup.path)).toBe("/backups/pre-t16-20261125-120000.dump");
    });

    it("runs the backfill dry run, then the apply with --batch-size; --force only when configured", async () => {
        const rollout = await build({ batchSize: "250" });
        expect(registered("backfill-dry-run").inputs.create).toContain("( cd /home/op/Thesis2/repositories/PROTEA && poetry run python scripts/backfill_schema_sha_v2.py --dry-run );");
        expect(registered("backfill-apply").inputs.create).toContain("( cd /home/op/Thesis2/repositories/PROTEA && poetry run python scripts/backfill_schema_sha_v2.py --batch-size 250 );");
        expect(registered("backfill-apply").inputs.delete).toBeUndefined();
        expect(await valueOf(rollout.backfill.applied)).toEqual({ dataset: { updated: 2, skipped: 0 }, reranker_model: { updated: 51, skipped: 0 } });
        await build({ forceBackfill: "true" });
        expect(registered("backfill-apply").inputs.create).toContain("--batch-size 100 --force );");
    });

    it("re-runs the backfill when the migration is re-applied, and verification when the backfill re-runs", async () => {
        await build();
        expect(registered("backfill-apply").inputs.triggers).toEqual(["migration-upgrade-id"]);
        expect(registered("verification-gate").inputs.triggers).toEqual([
            ["backfill-apply-id", { dataset: { updated: 2, skipped: 0 }, reranker_model: { updated: 51, skipped: 0 } }],
        ]);
    });

    it("passes the database URL only in the environment, never in a command string", async () => {
        await build({ pgAccess: "url", pauseWriters: "true", resumeWriters: "true" });
        const commands = registrations.filter((r) => r.type === "command:local:Command");
        expect(commands.length).toBeGreaterThanOrEqual(8);
        for (const c of commands) {
            expect(JSON.stringify([c.inputs.create, c.inputs.delete, c.inputs.update])).not.toContain(PASSWORD);
        }
        const environment = JSON.stringify(registered("migration-upgrade").inputs.environment);
        expect(environment).toContain(PASSWORD);
        // …and marked secret (Pulumi's secret signature), so state holds it encrypted.
        expect(environment).toContain("1b47061264138c4ac30d75fd1eb44270");
        expect(JSON.stringify(registered("migration-upgrade").inputs.environment)).toContain('"PGOPTIONS":"-c lock_timeout=5s"');
    });

    it("warns instead of pausing when no pause command is configured", async () => {
        await build();
        expect(registrations.some((r) => r.name === "quiesce-pause")).toBe(false);
        expect(registrations.some((r) => r.name === "resume-writers")).toBe(false);
    });
});
