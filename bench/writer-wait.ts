/**
 * How long the T1.6 migration makes writers wait. A writer updates random
 * reranker_model rows in a loop (one short transaction each) while
 * `alembic upgrade` runs with the rollout's lock_timeout on a table of a
 * million rows or more, twice: on a quiet table, and queued behind a long
 * reader (the case lock_timeout exists for: every writer queues behind the
 * migration's pending lock until it gives up). Prints the writer's worst and
 * 99th-percentile latency next to the target. Asserts nothing.
 *
 *   bash scripts/with-engine.sh npx ts-node --transpile-only bench/writer-wait.ts [--rows 1000000] [--lock-timeout 5s]
 *
 * Target (DESIGN.md): no writer waits longer than the lock timeout plus a second.
 */
import { Client } from "pg";
import { startPostgresCluster } from "../lib/postgresCluster";
import { runShell, tail } from "../lib/processes";
import { inDirectory } from "../lib/shell";
import { alembic, EXPECTED_HEAD, expectSuccess, FIXTURE_DIR, FIXTURE_PYTHON, seedSample, T16_REVISION } from "../test/integration/helpers/fixture";

function option(name: string, fallback: string): string {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
}
const rows = Number(option("rows", "1000000"));
const lockTimeout = option("lock-timeout", "5s");
const say = (line: string) => process.stdout.write(`bench: ${line}\n`);

/** Runs the upgrade while a writer loops; prints the writer's latencies during it. */
async function measure(scenario: string, clientConfig: object, url: string, limitMs: number): Promise<void> {
    const writer = new Client(clientConfig);
    await writer.connect();
    const latencies: number[] = [];
    let writing = true;
    const loop = (async () => {
        while (writing) {
            const started = performance.now();
            await writer.query("UPDATE reranker_model SET name = name WHERE id = $1", [1 + Math.floor(Math.random() * rows)]);
            latencies.push(performance.now() - started);
            await new Promise((r) => setTimeout(r, 10));
        }
    })();
    await new Promise((r) => setTimeout(r, 500));
    const before = latencies.length;
    const started = performance.now();
    const upgrade = await runShell(inDirectory(FIXTURE_DIR, `${FIXTURE_PYTHON} -m alembic upgrade ${T16_REVISION}`), {
        env: { ...process.env, PROTEA_DB_URL: url, PGOPTIONS: `-c lock_timeout=${lockTimeout}` },
    });
    const migrationSeconds = (performance.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 200));
    writing = false;
    await loop;
    await writer.end();
    const outcome = upgrade.code === 0 ? "applied" : /lock timeout/.test(upgrade.stderr) ? "gave up (lock timeout)" : `failed:\n${tail(upgrade.stderr)}`;
    const during = latencies.slice(before).sort((a, b) => a - b);
    const worst = during[during.length - 1] ?? 0;
    const p99 = during[Math.floor(during.length * 0.99)] ?? 0;
    say(`${scenario}: migration ${outcome} in ${migrationSeconds.toFixed(2)}s on ${rows} rows; ${during.length} writes: worst ${worst.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms; target <= ${limitMs} ms (lock_timeout ${lockTimeout} + 1s)`);
}

async function main(): Promise<void> {
    const cluster = await startPostgresCluster({});
    try {
        expectSuccess(await alembic(cluster.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
        say(`seeding ${rows} reranker models`);
        expectSuccess(await seedSample(cluster.sqlalchemyUrl, ["--datasets", "1000", "--reranker-models", String(rows)]), "seed");
        const limitMs = Number.parseFloat(lockTimeout) * (lockTimeout.endsWith("ms") ? 1 : lockTimeout.endsWith("min") ? 60_000 : 1000) + 1000;
        await measure("quiet table", cluster.clientConfig, cluster.sqlalchemyUrl, limitMs);
        expectSuccess(await alembic(cluster.sqlalchemyUrl, "downgrade", EXPECTED_HEAD), "reset");
        // A reader that keeps its transaction open past the lock timeout.
        const reader = new Client(cluster.clientConfig);
        await reader.connect();
        await reader.query("BEGIN; SELECT 1 FROM reranker_model LIMIT 1");
        const release = setTimeout(() => void reader.query("COMMIT"), limitMs + 2000);
        await measure("behind a long reader", cluster.clientConfig, cluster.sqlalchemyUrl, limitMs);
        clearTimeout(release);
        await reader.query("COMMIT");
        await reader.end();
    } finally {
        await cluster.stop();
    }
}

main().catch((err: Error) => {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exit(1);
});
