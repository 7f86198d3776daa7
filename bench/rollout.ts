/**
 * What Pulumi adds to the rollout: `pulumi up` of the prod-shaped stack next
 * to the very same commands run by hand in the same order (preflight gate,
 * verified pg_dump, alembic upgrade and its check, backfill dry run and apply,
 * verification), on one cluster seeded with the fixture. Alternates the two,
 * resetting the database in between (downgrade, dump removed), and prints
 * every run and the medians; asserts nothing.
 *
 *   bash scripts/with-engine.sh npx ts-node --transpile-only bench/rollout.ts [--runs 3] [--embedding-rows 0]
 *
 * Target (DESIGN.md): at most 2x by hand on the default sample, 1.1x on >= 1 GB.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { parseRolloutConfig } from "../lib/config";
import { startPostgresCluster } from "../lib/postgresCluster";
import { runShell, tail } from "../lib/processes";
import { rolloutCommand } from "../lib/rolloutCli";
import { andThen, inDirectory } from "../lib/shell";
import { alembic, EXPECTED_HEAD, expectSuccess, FIXTURE_DIR, FIXTURE_PYTHON, PROJECT_ROOT, seedSample } from "../test/integration/helpers/fixture";

function flag(name: string, fallback: number): number {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const runs = flag("runs", 3);
const embeddingRows = flag("embedding-rows", 0);
const say = (line: string) => process.stdout.write(`bench: ${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-rollout-"));
    const backupDir = path.join(workDir, "backups");
    const cluster = await startPostgresCluster({});
    const stackName = `bench-${randomBytes(4).toString("hex")}`;
    const env = { PULUMI_BACKEND_URL: `file://${workDir}`, PULUMI_CONFIG_PASSPHRASE: "bench" };
    try {
        expectSuccess(await alembic(cluster.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
        expectSuccess(await seedSample(cluster.sqlalchemyUrl, ["--embedding-rows", String(embeddingRows)]), "seed");
        const raw = {
            dbUrl: cluster.sqlalchemyUrl, pgAccess: "url", appDir: FIXTURE_DIR, backupDir, protect: "false",
            alembic: `${FIXTURE_PYTHON} -m alembic`, backfill: `${FIXTURE_PYTHON} scripts/backfill_schema_sha_v2.py`,
        };
        const config = parseRolloutConfig(raw);
        const columns = JSON.stringify(config.newColumns);
        const byHand = andThen(
            rolloutCommand("preflight", "--app-dir", config.appDir, "--alembic", config.alembic, "--expected-head", config.expectedHead, "--target-revision", config.targetRevision),
            rolloutCommand("backup", "--dir", backupDir, "--label", config.backupLabel, "--access", "url"),
            inDirectory(config.appDir, `${config.alembic} upgrade ${config.targetRevision}`),
            rolloutCommand("verify-schema", "--expect", "present", "--columns", columns),
            inDirectory(config.appDir, `${config.backfill} --dry-run`),
            inDirectory(config.appDir, `${config.backfill} --batch-size ${config.batchSize}`),
            rolloutCommand("verify-backfill", "--columns", columns, "--parity-sample", config.paritySample),
        );
        const commandEnv = { ...process.env, PROTEA_DB_URL: cluster.sqlalchemyUrl, PGOPTIONS: `-c lock_timeout=${config.lockTimeout}` };

        const stack = await LocalWorkspace.createStack({ stackName, workDir: PROJECT_ROOT }, { envVars: env });
        await stack.setAllConfig(Object.fromEntries(Object.entries(raw).map(([k, value]) => [`rollout:${k}`, { value, secret: k === "dbUrl" }])));

        const hand: number[] = [];
        const pulumi: number[] = [];
        for (let i = 1; i <= runs; i++) {
            let started = performance.now();
            const result = await runShell(byHand, { env: commandEnv });
            if (result.code !== 0) throw new Error(`by hand failed:\n${tail(result.stderr)}`);
            hand.push((performance.now() - started) / 1000);
            expectSuccess(await alembic(cluster.sqlalchemyUrl, "downgrade", EXPECTED_HEAD), "reset");
            fs.rmSync(backupDir, { recursive: true, force: true });

            started = performance.now();
            await stack.up();
            pulumi.push((performance.now() - started) / 1000);
            await stack.destroy();
            fs.rmSync(backupDir, { recursive: true, force: true });
            say(`run ${i}: by hand ${hand[i - 1].toFixed(2)}s, pulumi up ${pulumi[i - 1].toFixed(2)}s`);
        }
        const ratio = median(pulumi) / median(hand);
        say(`median by hand ${median(hand).toFixed(2)}s, pulumi up ${median(pulumi).toFixed(2)}s, ratio ${ratio.toFixed(2)} (${embeddingRows} embedding rows; load ${os.loadavg()[0].toFixed(2)})`);
        await stack.workspace.removeStack(stackName, { force: true });
    } finally {
        fs.rmSync(path.join(PROJECT_ROOT, `Pulumi.${stackName}.yaml`), { force: true });
        await cluster.stop();
        fs.rmSync(workDir, { recursive: true, force: true });
    }
}

main().catch((err: Error) => {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exit(1);
});
