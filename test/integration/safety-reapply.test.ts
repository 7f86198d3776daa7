/**
 * The rollout's safety when the order changes, under the real engine against
 * a real cluster and the PROTEA fixture (1 of 3, each on its own cluster so
 * the three run side by side): a re-apply after a rollback, the prod default
 * `protect: true`, and a rollback from another checkout.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestStack } from "./helpers/engine";
import { alembicCurrent, EXPECTED_HEAD, PROJECT_ROOT } from "./helpers/fixture";
import { dumpsIn, failureOf, useSafetyDatabase } from "./helpers/safetyDatabase";

const { cluster, workDir, npmRun, migrationPresent, snapshot, createStack, rollBack } = useSafetyDatabase({ beforeAll, afterAll });

describe("a re-apply after a rollback", () => {
    it("with a wrong expectedHead fails at the gate: no DDL, no dump, schema and rows unchanged; with the right one it takes a fresh dump", async () => {
        const s = await createStack();
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        await rollBack(s);
        const before = await snapshot();
        const dumps = dumpsIn(s.backupDir);

        await s.stack.setConfig("rollout:expectedHead", { value: "000000000000" });
        const failure = await failureOf(s.stack.up());
        expect(failure).toContain(`alembic current is ${EXPECTED_HEAD} but rollout:expectedHead is 000000000000`);
        expect(await snapshot()).toEqual(before);
        expect(dumpsIn(s.backupDir)).toEqual(dumps);

        await s.stack.setConfig("rollout:expectedHead", { value: EXPECTED_HEAD });
        const up = await s.stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(dumpsIn(s.backupDir)).toHaveLength(dumps.length + 1);
        await rollBack(s);
    });
});

describe("the prod default, protect: true", () => {
    it("the rollback asks (and without a terminal refuses), --preview changes nothing, then rollback, re-apply and restore all work", async () => {
        const s = await createStack({ protect: "true" });
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        const unconfirmed = await npmRun("rollback", ["--stack", s.stack.name], s.env);
        expect(unconfirmed.code).not.toBe(0);
        expect(unconfirmed.output).toContain("not confirmed; nothing changed");
        const preview = await npmRun("rollback", ["--stack", s.stack.name, "--preview"], s.env);
        expect(preview.code, preview.output).toBe(0);
        expect(preview.output).toMatch(/- +command:local:Command +migration-upgrade +delete/);
        expect(await migrationPresent()).toBe(true);

        await rollBack(s);
        const types = (await s.stack.exportStack()).deployment.resources.map((r: { type: string }) => r.type);
        expect(types).toContain("protea:rollout:Backup");
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        const restore = await npmRun("restore", ["--stack", s.stack.name, "--confirm", cluster().database], s.env);
        expect(restore.code, restore.output).toBe(0);
        expect(await migrationPresent()).toBe(false);
        // A re-apply after the restore: gate, fresh dump, migration.
        const dumps = dumpsIn(s.backupDir).length;
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        expect(dumpsIn(s.backupDir)).toHaveLength(dumps + 1);
        await rollBack(s);
        // The backup stays protected: a full destroy refuses it.
        expect(await failureOf(s.stack.destroy())).toMatch(/protected/);
    });
});

describe("a rollback from another checkout", () => {
    it("works after the checkout that applied is deleted, and an up from another checkout changes nothing", async () => {
        // Checkout A: a copy of the project, with relative paths as an operator's clone has them.
        const checkoutA = fs.mkdtempSync(path.join(workDir, "checkout-a-"));
        for (const entry of ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts", "components", "lib", "bin", "test/fixtures"]) {
            fs.cpSync(path.join(PROJECT_ROOT, entry), path.join(checkoutA, entry), { recursive: true });
        }
        fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(checkoutA, "node_modules"));
        fs.mkdirSync(path.join(checkoutA, ".state"));
        fs.symlinkSync(path.join(PROJECT_ROOT, ".state/venv"), path.join(checkoutA, ".state/venv"));
        fs.symlinkSync(fs.realpathSync(path.join(PROJECT_ROOT, ".state/tools")), path.join(checkoutA, ".state/tools"));
        const s = await createStack({ appDir: "test/fixtures/protea", alembic: "../../../.state/venv/bin/python -m alembic", backfill: "../../../.state/venv/bin/python scripts/backfill_schema_sha_v2.py" }, checkoutA);
        expect((await s.stack.up()).summary.result).toBe("succeeded");
        const state = JSON.stringify((await s.stack.exportStack()).deployment);
        expect(state).not.toContain(checkoutA);
        expect(state).not.toContain(process.execPath);

        // The stack's config file comes with every clone (it is tracked); the backend and passphrase are shared.
        const configFile = `Pulumi.${s.stack.name}.yaml`;
        fs.copyFileSync(path.join(checkoutA, configFile), path.join(PROJECT_ROOT, configFile));
        try {
            fs.rmSync(checkoutA, { recursive: true, force: true });
            const fromB = await newTestStackView(s);
            const preview = await fromB.preview();
            expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
            await rollBack(s);
            expect(await alembicCurrent(cluster().sqlalchemyUrl)).toBe(EXPECTED_HEAD);
            const types = (await fromB.exportStack()).deployment.resources.map((r: { type: string }) => r.type);
            expect(types).not.toContain("protea:rollout:Migration");
        } finally {
            // The copy is this checkout's now: the stack's removal only knows checkout A's.
            fs.rmSync(path.join(PROJECT_ROOT, configFile), { force: true });
        }
    });
});

/** The same stack, opened from this checkout. */
async function newTestStackView(s: TestStack) {
    const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
    return LocalWorkspace.selectStack({ stackName: s.stack.name, workDir: PROJECT_ROOT }, { envVars: s.env });
}
