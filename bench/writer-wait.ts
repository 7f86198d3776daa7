/**
 * How long the T1.6 migration makes writers wait. `--writers` clients each
 * update random reranker_model rows in a loop (one short transaction each,
 * 10 ms apart) while `alembic upgrade` runs with the rollout's lock_timeout on
 * a table of `--rows` rows, `--runs` times in each of two scenarios:
 *
 * - quiet table: writers wait while the migration holds its ACCESS EXCLUSIVE
 *   lock (two ADD COLUMNs and the index builds, one transaction);
 * - behind a long reader: a transaction holds the table past the lock
 *   timeout, the case lock_timeout exists for. The migration's pending lock
 *   queues every writer behind it until it gives up, so here the wait is the
 *   lock timeout and the migration is expected NOT to land.
 *
 * Per run: the worst wait of any writer during the migration, and whether
 * the migration landed or gave up and why (from its error output). Per
 * scenario: the median and max of the runs' worst waits. Asserts nothing.
 *
 * The migration is what the rollout's migrate step runs (bin/rollout.ts):
 * `<alembic> upgrade <target>` with PGOPTIONS `-c lock_timeout=<t>`, here
 * without the tool's gates and rollout lock around it.
 *
 * Target (DESIGN.md): no writer waits longer than the lock timeout plus a second.
 */
import { Client } from "pg";
import { parseDuration } from "../lib/config";
import { PostgresCluster, startPostgresCluster } from "../lib/postgresCluster";
import { run, runShell, tail } from "../lib/processes";
import { inDirectory } from "../lib/shell";
import { alembic, alembicCurrent, EXPECTED_HEAD, expectSuccess, FIXTURE_DIR, FIXTURE_PYTHON, seedSample, T16_REVISION } from "../test/integration/helpers/fixture";
import { benchFlags, loadAverage, machineLine, median, say, table } from "./common";

const USAGE = `usage: bash scripts/with-engine.sh npx ts-node --transpile-only bench/writer-wait.ts [flags]

How long writers wait while the T1.6 migration runs (figures only, asserts nothing).

  --rows N           reranker_model rows to seed (default 1000000)
  --lock-timeout D   the migration's lock_timeout, e.g. 5s, 1500ms (default 5s, rollout:lockTimeout's)
  --runs N           runs per scenario (default 3)
  --writers N        concurrent writers, one connection each (default 4)
  --help             this text

Scenarios: a quiet table; the table held by a reader past the lock timeout.
Progress goes to stderr ("bench: ..."), the summary table to stdout.`;

const flags = benchFlags(
    { rows: { default: 1_000_000, min: 1 }, "lock-timeout": "5s", runs: { default: 3, min: 1 }, writers: { default: 4, min: 1 } },
    USAGE,
);
const lockTimeout = flags["lock-timeout"];
const lockTimeoutMs = parseDuration(lockTimeout);
if (lockTimeoutMs === undefined) {
    process.stderr.write(`--lock-timeout must look like 5s, 1500ms or 1min, got "${lockTimeout}"\n\n${USAGE}\n`);
    process.exit(2);
}
const targetMs = lockTimeoutMs + 1000;
const migrationOptions = `-c lock_timeout=${lockTimeout}`;

interface RunFigures {
    scenario: string;
    run: number;
    /** The worst wait of any writer during the migration, and whose. */
    worstMs: number;
    worstWriter: number;
    p99Ms: number;
    writes: number;
    migrationSeconds: number;
    landed: boolean;
    /** Why it gave up, from its error output (empty when it landed). */
    reason: string;
}

/** One writer's loop: a short UPDATE transaction every 10 ms, each timed, until `stop()`. */
function startWriter(client: Client): { writes: { start: number; end: number }[]; stop: () => Promise<void> } {
    const writes: { start: number; end: number }[] = [];
    let writing = true;
    const loop = (async () => {
        while (writing) {
            const start = performance.now();
            await client.query("UPDATE reranker_model SET name = name WHERE id = $1", [1 + Math.floor(Math.random() * flags.rows)]);
            writes.push({ start, end: performance.now() });
            await new Promise((r) => setTimeout(r, 10));
        }
    })();
    // A failed write surfaces from stop(), not as an unhandled rejection mid-run.
    loop.catch(() => undefined);
    return {
        writes,
        stop: async () => {
            writing = false;
            await loop;
        },
    };
}

/**
 * Why alembic failed, from its (SQLAlchemy's) error output: "canceling
 * statement due to lock timeout (lock_timeout 5s) on ALTER TABLE …".
 */
function whyItGaveUp(stderr: string): string {
    const error = /\((?:psycopg|psycopg2)\.errors\.\w+\) ([^\n]+)/.exec(stderr)?.[1] ?? /^\w+(?:\.\w+)*(?:Error|Exception): ([^\n]+)$/m.exec(stderr)?.[1] ?? tail(stderr, 1);
    const statement = /^\[SQL: ([^\n\]]+)\]?$/m.exec(stderr)?.[1];
    return `${error.trim()} (lock_timeout ${lockTimeout})${statement ? ` on ${statement.trim()}` : ""}`;
}

/** Runs the upgrade while the writers write; the figures of the writes that overlapped it. */
async function measure(cluster: PostgresCluster, scenario: string, runNo: number): Promise<RunFigures> {
    const clients: Client[] = [];
    let writers: ReturnType<typeof startWriter>[] = [];
    try {
        for (let i = 0; i < flags.writers; i++) {
            clients.push(new Client(cluster.clientConfig));
            await clients[i].connect();
        }
        writers = clients.map(startWriter);
        await new Promise((r) => setTimeout(r, 500));
        const started = performance.now();
        const upgrade = await runShell(inDirectory(FIXTURE_DIR, `${FIXTURE_PYTHON} -m alembic upgrade ${T16_REVISION}`), {
            env: { ...process.env, PROTEA_DB_URL: cluster.sqlalchemyUrl, PGOPTIONS: migrationOptions },
        });
        const ended = performance.now();
        await new Promise((r) => setTimeout(r, 200));
        await Promise.all(writers.map((w) => w.stop()));

        // A write counts when it was in flight at any moment of the migration.
        const during = writers.map((w) => w.writes.filter((x) => x.end >= started && x.start <= ended).map((x) => x.end - x.start));
        const worstPerWriter = during.map((ms) => Math.max(0, ...ms));
        const worstMs = Math.max(...worstPerWriter);
        const all = during.flat().sort((a, b) => a - b);
        return {
            scenario,
            run: runNo,
            worstMs,
            worstWriter: worstPerWriter.indexOf(worstMs) + 1,
            p99Ms: all[Math.min(all.length - 1, Math.floor(all.length * 0.99))] ?? 0,
            writes: all.length,
            migrationSeconds: (ended - started) / 1000,
            landed: upgrade.code === 0,
            reason: upgrade.code === 0 ? "" : whyItGaveUp(upgrade.stderr || upgrade.stdout),
        };
    } finally {
        await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
}

/** A transaction that holds the table (ACCESS SHARE) until `release()`, as a long report query would. */
async function holdTableWithReader(cluster: PostgresCluster): Promise<{ release: () => Promise<void> }> {
    const reader = new Client(cluster.clientConfig);
    await reader.connect();
    await reader.query("BEGIN; SELECT 1 FROM reranker_model LIMIT 1");
    let released: Promise<void> | undefined;
    const release = () => (released ??= reader.query("COMMIT").then(() => reader.end()));
    // Only a safety net: should the lock timeout not apply, the migration would wait for this reader forever.
    const safety = setTimeout(() => void release(), targetMs + 30_000);
    return {
        release: async () => {
            clearTimeout(safety);
            await release();
        },
    };
}

const ms = (value: number) => `${Math.round(value)} ms`;
const outcome = (r: RunFigures) =>
    r.landed ? `landed in ${r.migrationSeconds.toFixed(2)} s` : `gave up after ${r.migrationSeconds.toFixed(2)} s: ${r.reason}`;

async function main(): Promise<void> {
    const loadBefore = loadAverage();
    say(`${flags.rows} rows, lock_timeout ${lockTimeout}, ${flags.writers} writers, runs per scenario: ${flags.runs}; load average ${loadBefore}`);
    const cluster = await startPostgresCluster({ log: say });
    try {
        expectSuccess(await alembic(cluster.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
        say(`seeding ${flags.rows} reranker models`);
        expectSuccess(await seedSample(cluster.sqlalchemyUrl, ["--datasets", "1000", "--reranker-models", String(flags.rows)]), "seed");
        // What a libpq session (psycopg's, as alembic's) started with these PGOPTIONS gets.
        const shown = await run("psql", ["-tAc", "SHOW lock_timeout"], { env: { ...process.env, ...cluster.libpqEnv, PGOPTIONS: migrationOptions } });
        const sessionLockTimeout = shown.code === 0 ? shown.stdout.trim() : `unknown (psql: ${tail(shown.stderr, 1)})`;
        say(`the migration's session gets lock_timeout = ${sessionLockTimeout} (PGOPTIONS "${migrationOptions}")`);

        const figures: RunFigures[] = [];
        const plan: { name: string; reader: boolean }[] = [
            { name: "quiet table", reader: false },
            { name: "behind a long reader", reader: true },
        ];
        for (const scenario of plan) {
            for (let i = 1; i <= flags.runs; i++) {
                // Each run starts from the expected head; a migration that landed is undone first (untimed).
                if ((await alembicCurrent(cluster.sqlalchemyUrl)) !== EXPECTED_HEAD) {
                    expectSuccess(await alembic(cluster.sqlalchemyUrl, "downgrade", EXPECTED_HEAD), "reset: alembic downgrade");
                }
                const reader = scenario.reader ? await holdTableWithReader(cluster) : undefined;
                let result: RunFigures;
                try {
                    result = await measure(cluster, scenario.name, i);
                } finally {
                    await reader?.release();
                }
                figures.push(result);
                say(`${scenario.name}, run ${i}/${flags.runs}: worst wait ${ms(result.worstMs)} (writer ${result.worstWriter}), p99 ${ms(result.p99Ms)}, ${result.writes} writes; migration ${outcome(result)}`);
            }
        }

        const summary = plan.map(({ name }) => {
            const runs = figures.filter((f) => f.scenario === name);
            const worst = runs.map((f) => f.worstMs);
            const landed = runs.filter((f) => f.landed).length;
            const reasons = [...new Set(runs.filter((f) => !f.landed).map((f) => f.reason))];
            const migration = `landed ${landed} of ${runs.length}` + (reasons.length > 0 ? `; gave up ${runs.length - landed}: ${reasons.join(" / ")}` : "");
            return [name, ms(median(worst)), ms(Math.max(...worst)), ms(targetMs), Math.max(...worst) <= targetMs ? "yes" : "NO", migration];
        });
        const lines = [
            "",
            `writer wait during \`alembic upgrade ${T16_REVISION}\`: ${flags.rows} rows, ${flags.writers} writers, runs per scenario: ${flags.runs},`,
            `lock_timeout ${lockTimeout} (session shows ${sessionLockTimeout}); target: no writer waits more than ${ms(targetMs)} (lock_timeout + 1 s)`,
            `machine: ${machineLine(loadBefore)}`,
            "",
            table([["scenario", "median worst wait", "max worst wait", "target", "within", "migration"], ...summary]),
            "",
            table([
                ["scenario", "run", "worst wait", "p99", "writes", "migration"],
                ...figures.map((f) => [f.scenario, String(f.run), `${ms(f.worstMs)} (writer ${f.worstWriter})`, ms(f.p99Ms), String(f.writes), outcome(f)]),
            ]),
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
    } finally {
        await cluster.stop();
    }
}

main().catch((err: Error) => {
    say(err.message);
    process.exit(1);
});
