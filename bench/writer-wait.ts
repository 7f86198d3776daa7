/**
 * How long the T1.6 migration makes writers wait. `--writers` clients each
 * update random reranker_model rows in a loop (one short transaction each,
 * 10 ms apart) while the migration runs on a table of `--rows` rows, in
 * `--runs` rounds; each round runs every scenario with every side (`--via`),
 * the sides' order alternating from round to round. Sides:
 *
 * - alembic: today's bare `alembic upgrade <target>` with PGOPTIONS
 *   `-c lock_timeout=<t>`, without the tool's gates and rollout lock;
 * - product: the rollout's migrate step as its stored command runs it
 *   (components/migration.ts): `protea-rollout migrate --direction up` with
 *   `--lock-timeout <t>` per try and `--lock-budget`, i.e. the lock-aware
 *   apply (lib/runbook/lockAwareApply.ts) with its gates and advisory locks.
 *
 * Scenarios:
 *
 * - quiet table: writers wait while the migration holds its ACCESS EXCLUSIVE
 *   lock (two ADD COLUMNs and the index builds, one transaction);
 * - behind a long reader: a transaction holds ACCESS SHARE on reranker_model.
 *   On the alembic side it is released only once the migration has ended
 *   (today's behaviour): the migration's pending lock queues every writer
 *   behind it until it gives up on its lock_timeout, so it is expected NOT to
 *   land. On the product side it is released `--reader-seconds` after the
 *   migration started: the apply should skip or give up its tries while the
 *   reader is there and land after it ends.
 *
 * Per run: the worst wait of any writer during the migration (and when it
 * began), whether the migration landed or gave up and why, and on the product
 * side its tries and skipped looks (from its stderr: "try N gave up", "not
 * trying yet") and when it landed relative to the reader's release. Per
 * scenario and side: the median and max of the runs' worst waits against the
 * target. Asserts nothing. At the end, the migration's DDL is timed statement
 * by statement on the quiet table (one transaction, rolled back): how long
 * the ACCESS EXCLUSIVE lock a landing migration takes is held.
 *
 * Target (the lock-aware apply's issue): behind a long reader, no writer
 * waits longer than the per-try lock_timeout + 100 ms and the migration lands
 * once the reader ends; on a quiet table nothing is slower than today.
 */
import { spawn } from "node:child_process";
import { Client } from "pg";
import { DEFAULT_NEW_COLUMNS, parseDuration } from "../lib/config/config";
import { PostgresCluster, startPostgresCluster } from "../lib/postgres/cluster/cluster";
import { run, runShell, tail } from "../lib/process/processes";
import { inDirectory } from "../lib/process/shell";
import { alembic, alembicCurrent, EXPECTED_HEAD, expectSuccess, FIXTURE_DIR, FIXTURE_PYTHON, seedSample, T16_REVISION } from "../test/integration/helpers/fixture";
import { benchFlags, benchHelp, loadAverage, machineLine, median, say, table } from "./common";

const CLI = {
    usage: "bash scripts/with-engine.sh npx ts-node --transpile-only bench/writer-wait.ts",
    description: `How long writers wait while the T1.6 migration runs (figures only, asserts nothing).

Scenarios: a quiet table; the table held by a long reader.
The product side needs protea-rollout on PATH (run through scripts/with-engine.sh).
Progress goes to stderr ("bench: ..."), the summary tables to stdout.`,
    flags: {
        via: {
            default: "both",
            value: "SIDE",
            description: "product, alembic or both: the product's `protea-rollout migrate --direction up` (lock-aware apply), and/or today's bare `alembic upgrade` with PGOPTIONS lock_timeout",
        },
        "lock-timeout": { default: "1s", value: "D", description: "lock_timeout of the bare run and of each of the product's tries, e.g. 1s, 1500ms" },
        "lock-budget": { default: "60s", value: "D", description: "the product's --lock-budget" },
        "lock-retries": { default: 10, min: 0, description: "the product's --lock-retries" },
        "reader-seconds": {
            default: 10,
            min: 0,
            description: "product side: the reader is released N s after the migration starts; the alembic side's reader stays until its migration has ended",
        },
        rows: { default: 1_000_000, min: 1, description: "reranker_model rows to seed" },
        runs: { default: 3, min: 1, description: "rounds; each runs every scenario on every side" },
        writers: { default: 4, min: 1, description: "concurrent writers, one connection each" },
    },
} as const;
const USAGE = benchHelp(CLI);

const flags = benchFlags(CLI);
const usageError = (message: string): never => {
    process.stderr.write(`${message}\n\n${USAGE}\n`);
    process.exit(2);
};
type Side = "alembic" | "product";
const sides: Side[] = flags.via === "both" ? ["alembic", "product"] : flags.via === "alembic" || flags.via === "product" ? [flags.via] : usageError(`--via must be product, alembic or both, got "${flags.via}"`);
const lockTimeout = flags["lock-timeout"];
const lockTimeoutMs = parseDuration(lockTimeout) ?? usageError(`--lock-timeout must look like 1s, 1500ms or 1min, got "${lockTimeout}"`);
if (lockTimeoutMs < 1) usageError("--lock-timeout must be at least 1ms");
const lockBudget = flags["lock-budget"];
const lockBudgetMs = parseDuration(lockBudget) ?? usageError(`--lock-budget must look like 60s or 2min, got "${lockBudget}"`);
const readerMs = flags["reader-seconds"] * 1000;
const targetMs = lockTimeoutMs + 100;
const migrationOptions = `-c lock_timeout=${lockTimeout}`;
const ALEMBIC = `${FIXTURE_PYTHON} -m alembic`;

interface RunFigures {
    scenario: string;
    side: Side;
    run: number;
    /** The worst wait of any writer during the migration, whose, and when it began (s after the migration started). */
    worstMs: number;
    worstWriter: number;
    worstAtS: number;
    p99Ms: number;
    writes: number;
    migrationSeconds: number;
    landed: boolean;
    /** Why it gave up, from its error output (empty when it landed). */
    reason: string;
    /** Product side: tries made, looks skipped because a session held the table. */
    tries?: number;
    skips?: number;
    /** Product side, behind the reader: s after the migration started that the reader was released, and that the migration had landed (committed). */
    releasedAtS?: number;
    landedAtS?: number;
    /** Product side: the landing try's alembic run, in ms (its `step upgrade took`). */
    landingTryMs?: number;
    /** Where the worst write falls: "landing try", "while the reader held the table", … */
    worstDuring?: string;
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
 * statement due to lock timeout (lock_timeout 1s) on ALTER TABLE …".
 */
function whyItGaveUp(stderr: string): string {
    const error = /\((?:psycopg|psycopg2)\.errors\.\w+\) ([^\n]+)/.exec(stderr)?.[1] ?? /^\w+(?:\.\w+)*(?:Error|Exception): ([^\n]+)$/m.exec(stderr)?.[1] ?? tail(stderr, 1);
    const statement = /^\[SQL: ([^\n\]]+)\]?$/m.exec(stderr)?.[1];
    return `${error.trim()} (lock_timeout ${lockTimeout})${statement ? ` on ${statement.trim()}` : ""}`;
}

/** A line of a child's stderr and when it arrived (performance.now()). */
interface TimedLine {
    at: number;
    line: string;
}

/** Runs a program (no shell), each stderr line timestamped as it arrives. */
function runTimed(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; lines: TimedLine[] }> {
    return new Promise((resolve, reject) => {
        const child = spawn(program, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let rest = "";
        const lines: TimedLine[] = [];
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
            const at = performance.now();
            const parts = (rest + chunk).split("\n");
            rest = parts.pop() ?? "";
            for (const line of parts) lines.push({ at, line });
        });
        child.on("error", (err) => reject(new Error(`could not start ${program}: ${err.message}`)));
        child.on("close", (code, signal) => {
            if (rest !== "") lines.push({ at: performance.now(), line: rest });
            resolve({ code: code ?? (signal ? 128 : 1), stdout, lines });
        });
    });
}

/** The product's migrate step, as components/migration.ts stores it (`rolloutCommand("migrate", "--direction", "up", …)`). */
function productArgs(): string[] {
    return [
        "migrate", "--direction", "up",
        "--stack", "bench/writer-wait",
        "--app-dir", FIXTURE_DIR,
        "--alembic", ALEMBIC,
        "--expected-head", EXPECTED_HEAD,
        "--target-revision", T16_REVISION,
        "--columns", JSON.stringify(DEFAULT_NEW_COLUMNS),
        "--lock-timeout", lockTimeout,
        "--lock-retries", String(flags["lock-retries"]),
        "--lock-budget", lockBudget,
        "--timeout", "10min",
    ];
}

/** A transaction that holds the table (ACCESS SHARE) until `release()`, as a long report query would. */
async function holdTableWithReader(cluster: PostgresCluster): Promise<{ release: () => Promise<number> }> {
    const reader = new Client(cluster.clientConfig);
    await reader.connect();
    await reader.query("BEGIN; SELECT 1 FROM reranker_model LIMIT 1");
    let released: Promise<number> | undefined;
    const release = () => (released ??= reader.query("COMMIT").then(async () => {
        const at = performance.now();
        await reader.end();
        return at;
    }));
    // Only a safety net: should the lock timeout not apply, the migration would wait for this reader forever.
    const safety = setTimeout(() => void release(), Math.max(targetMs, readerMs, lockBudgetMs) + 60_000);
    return {
        release: async () => {
            clearTimeout(safety);
            return release();
        },
    };
}

/** Runs the migration (one side) while the writers write; the figures of the writes that overlapped it. */
async function measure(cluster: PostgresCluster, scenario: { name: string; reader: boolean }, side: Side, runNo: number): Promise<RunFigures> {
    const clients: Client[] = [];
    let writers: ReturnType<typeof startWriter>[] = [];
    const reader = scenario.reader ? await holdTableWithReader(cluster) : undefined;
    let releaseTimer: NodeJS.Timeout | undefined;
    let releasedAt: Promise<number> | undefined;
    try {
        for (let i = 0; i < flags.writers; i++) {
            clients.push(new Client(cluster.clientConfig));
            await clients[i].connect();
        }
        writers = clients.map(startWriter);
        await new Promise((r) => setTimeout(r, 500));
        const started = performance.now();
        const env: NodeJS.ProcessEnv = { ...process.env, PROTEA_DB_URL: cluster.sqlalchemyUrl, PYTHONDONTWRITEBYTECODE: "1" };
        delete env.PGOPTIONS;
        let figures: Pick<RunFigures, "landed" | "reason" | "tries" | "skips" | "landedAtS" | "landingTryMs">;
        let landingTry: [number, number] | undefined;
        if (side === "alembic") {
            const upgrade = await runShell(inDirectory(FIXTURE_DIR, `${ALEMBIC} upgrade ${T16_REVISION}`), { env: { ...env, PGOPTIONS: migrationOptions } });
            figures = { landed: upgrade.code === 0, reason: upgrade.code === 0 ? "" : whyItGaveUp(upgrade.stderr || upgrade.stdout) };
        } else {
            if (reader) {
                releaseTimer = setTimeout(() => {
                    releasedAt = reader.release();
                    releasedAt.then(() => say(`  the reader released its transaction ${((performance.now() - started) / 1000).toFixed(1)} s after the migration started`), () => undefined);
                }, readerMs);
            }
            const migrate = await runTimed("protea-rollout", productArgs(), env);
            const skips = migrate.lines.filter((l) => /not trying yet/.test(l.line)).length;
            const gaveUp = migrate.lines.filter((l) => /try \d+ gave up/.test(l.line)).length;
            const landed = migrate.code === 0;
            // After the commit: the schema check, then "step upgrade took <ms>" (the landing try's alembic run).
            const checked = migrate.lines.find((l) => /^schema check: every new column and index present/.test(l.line));
            const took = migrate.lines.map((l) => ({ at: l.at, ms: /^step upgrade took (\d+) ms/.exec(l.line)?.[1] })).find((l) => l.ms !== undefined);
            if (took) landingTry = [took.at - Number(took.ms), checked?.at ?? took.at];
            const failure = migrate.lines.map((l) => l.line).filter((l) => l.trim() !== "");
            figures = {
                landed,
                reason: landed ? "" : (failure.find((l) => /could not get its locks|gate:|failed/.test(l)) ?? failure.pop() ?? `exit ${migrate.code}`).slice(0, 400),
                tries: gaveUp + (landed ? 1 : 0),
                skips,
                landedAtS: landed && checked ? (checked.at - started) / 1000 : undefined,
                landingTryMs: took ? Number(took.ms) : undefined,
            };
            if (!landed) say(`  product side failed:\n${tail(migrate.lines.map((l) => l.line).join("\n"), 8)}`);
        }
        const ended = performance.now();
        // The alembic side keeps today's behaviour: the reader goes once the migration has ended.
        clearTimeout(releaseTimer);
        if (reader && !releasedAt) releasedAt = reader.release();
        const releasedAtMs = releasedAt ? await releasedAt : undefined;
        await new Promise((r) => setTimeout(r, 200));
        await Promise.all(writers.map((w) => w.stop()));

        // A write counts when it was in flight at any moment of the migration.
        const during = writers.map((w) => w.writes.filter((x) => x.end >= started && x.start <= ended));
        const worstPerWriter = during.map((xs) => xs.reduce<{ start: number; end: number } | undefined>((a, x) => (!a || x.end - x.start > a.end - a.start ? x : a), undefined));
        const waits = worstPerWriter.map((x) => (x ? x.end - x.start : 0));
        const worstMs = Math.max(...waits);
        const worst = worstPerWriter[waits.indexOf(worstMs)];
        const all = during.flat().map((x) => x.end - x.start).sort((a, b) => a - b);
        let worstDuring: string | undefined;
        if (worst && side === "product") {
            const overlaps = (from: number, to: number) => worst.end >= from && worst.start <= to;
            worstDuring =
                landingTry && overlaps(landingTry[0], landingTry[1]) ? "during the landing try"
                : releasedAtMs !== undefined && worst.start < releasedAtMs ? "while the reader held the table"
                : "outside the landing try";
        }
        return {
            scenario: scenario.name,
            side,
            run: runNo,
            worstMs,
            worstWriter: waits.indexOf(worstMs) + 1,
            worstAtS: worst ? (worst.start - started) / 1000 : 0,
            p99Ms: all[Math.min(all.length - 1, Math.floor(all.length * 0.99))] ?? 0,
            writes: all.length,
            migrationSeconds: (ended - started) / 1000,
            releasedAtS: releasedAtMs !== undefined ? (releasedAtMs - started) / 1000 : undefined,
            worstDuring,
            ...figures,
        };
    } finally {
        clearTimeout(releaseTimer);
        await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
        await reader?.release().catch(() => undefined);
    }
}

/**
 * The migration's DDL (as the T1.6 revision runs it: both ADD COLUMNs, then
 * both indexes, one transaction) timed statement by statement on the quiet
 * table, then rolled back: the ACCESS EXCLUSIVE lock on reranker_model is
 * held from its ADD COLUMN to the end of the transaction.
 */
async function timeDdl(cluster: PostgresCluster): Promise<string> {
    const client = new Client(cluster.clientConfig);
    await client.connect();
    try {
        const statements = [
            ...DEFAULT_NEW_COLUMNS.map((c) => [`ADD COLUMN ${c.table}`, `ALTER TABLE ${c.table} ADD COLUMN ${c.column} TEXT`]),
            ...DEFAULT_NEW_COLUMNS.map((c) => [`CREATE INDEX ${c.index}`, `CREATE INDEX ${c.index} ON ${c.table} (${c.column})`]),
        ];
        const timed: string[] = [];
        let heldFrom: number | undefined;
        await client.query("BEGIN");
        for (const [label, sql] of statements) {
            const start = performance.now();
            if (label === "ADD COLUMN reranker_model") heldFrom = start;
            await client.query(sql);
            timed.push(`${label} ${Math.round(performance.now() - start)} ms`);
        }
        const end = performance.now();
        await client.query("ROLLBACK");
        return `${timed.join(", ")}; ACCESS EXCLUSIVE on reranker_model held ${heldFrom === undefined ? "?" : Math.round(end - heldFrom)} ms before the commit`;
    } finally {
        await client.end().catch(() => undefined);
    }
}

const ms = (value: number) => `${Math.round(value)} ms`;
const s = (value: number) => `${value.toFixed(1)} s`;
const outcome = (r: RunFigures) => {
    if (r.side === "alembic") {
        const base = r.landed ? `landed in ${r.migrationSeconds.toFixed(2)} s` : `gave up after ${r.migrationSeconds.toFixed(2)} s: ${r.reason}`;
        return r.releasedAtS !== undefined ? `${base}; reader held until the migration ended (today's behaviour)` : base;
    }
    const counts = `${r.tries} ${r.tries === 1 ? "try" : "tries"}, ${r.skips} skipped ${r.skips === 1 ? "look" : "looks"}`;
    if (!r.landed) return `gave up after ${r.migrationSeconds.toFixed(2)} s (${counts}): ${r.reason}`;
    const when = r.releasedAtS !== undefined && r.landedAtS !== undefined ? `; reader released at +${s(r.releasedAtS)}, landed at +${s(r.landedAtS)} (${s(r.landedAtS - r.releasedAtS)} after the release)` : "";
    return `landed in ${r.migrationSeconds.toFixed(2)} s (${counts}; landing try ${r.landingTryMs ?? "?"} ms)${when}`;
};
const worstCell = (f: RunFigures) => `${ms(f.worstMs)} (writer ${f.worstWriter}, at +${s(f.worstAtS)}${f.worstDuring ? `, ${f.worstDuring}` : ""})`;

async function main(): Promise<void> {
    const loadBefore = loadAverage();
    say(`${flags.rows} rows, lock_timeout ${lockTimeout}, ${flags.writers} writers, rounds: ${flags.runs}, via ${sides.join(" and ")}; load average ${loadBefore}`);
    if (sides.includes("product")) {
        const found = await runShell("command -v protea-rollout");
        if (found.code !== 0) throw new Error("protea-rollout is not on PATH: run this through `bash scripts/with-engine.sh npx ts-node --transpile-only bench/writer-wait.ts`");
        say(`product side: ${found.stdout.trim()} migrate --direction up --lock-timeout ${lockTimeout} --lock-retries ${flags["lock-retries"]} --lock-budget ${lockBudget}; the reader is released ${flags["reader-seconds"]} s after it starts`);
    }
    const cluster = await startPostgresCluster({ log: say });
    try {
        expectSuccess(await alembic(cluster.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
        say(`seeding ${flags.rows} reranker models`);
        expectSuccess(await seedSample(cluster.sqlalchemyUrl, ["--datasets", "1000", "--reranker-models", String(flags.rows)]), "seed");
        // What a libpq session (psycopg's, as alembic's) started with these PGOPTIONS gets.
        const shown = await run("psql", ["-tAc", "SHOW lock_timeout"], { env: { ...process.env, ...cluster.libpqEnv, PGOPTIONS: migrationOptions } });
        const sessionLockTimeout = shown.code === 0 ? shown.stdout.trim() : `unknown (psql: ${tail(shown.stderr, 1)})`;
        say(`the bare migration's session gets lock_timeout = ${sessionLockTimeout} (PGOPTIONS "${migrationOptions}")`);

        const figures: RunFigures[] = [];
        const plan: { name: string; reader: boolean }[] = [
            { name: "quiet table", reader: false },
            { name: "behind a long reader", reader: true },
        ];
        for (let i = 1; i <= flags.runs; i++) {
            // Interleaved: every scenario and side each round, the sides' order alternating.
            const order = i % 2 === 1 ? sides : [...sides].reverse();
            for (const scenario of plan) {
                for (const side of order) {
                    // Each run starts from the expected head; a migration that landed is undone first (untimed).
                    if ((await alembicCurrent(cluster.sqlalchemyUrl)) !== EXPECTED_HEAD) {
                        expectSuccess(await alembic(cluster.sqlalchemyUrl, "downgrade", EXPECTED_HEAD), "reset: alembic downgrade");
                    }
                    const result = await measure(cluster, scenario, side, i);
                    figures.push(result);
                    say(`${scenario.name}, ${side}, run ${i}/${flags.runs}: worst wait ${worstCell(result)}, p99 ${ms(result.p99Ms)}, ${result.writes} writes; migration ${outcome(result)}`);
                }
            }
        }
        if ((await alembicCurrent(cluster.sqlalchemyUrl)) !== EXPECTED_HEAD) {
            expectSuccess(await alembic(cluster.sqlalchemyUrl, "downgrade", EXPECTED_HEAD), "reset: alembic downgrade");
        }
        say("timing the migration's DDL statement by statement on the quiet table (rolled back)");
        const ddl = await timeDdl(cluster);

        const groups = plan.flatMap(({ name }) => sides.map((side) => ({ name, side, runs: figures.filter((f) => f.scenario === name && f.side === side) })));
        const summary = groups.map(({ name, side, runs }) => {
            const worst = runs.map((f) => f.worstMs);
            const landed = runs.filter((f) => f.landed);
            const reasons = [...new Set(runs.filter((f) => !f.landed).map((f) => f.reason))];
            let migration = `landed ${landed.length} of ${runs.length}` + (reasons.length > 0 ? `; gave up ${runs.length - landed.length}: ${reasons.join(" / ")}` : "");
            if (side === "product") {
                const afterRelease = landed.filter((f) => f.landedAtS !== undefined && f.releasedAtS !== undefined).map((f) => f.landedAtS! - f.releasedAtS!);
                migration += `; tries ${runs.map((f) => f.tries).join("/")}, skipped looks ${runs.map((f) => f.skips).join("/")}`;
                if (afterRelease.length > 0) migration += `; landed ${s(median(afterRelease))} (median; max ${s(Math.max(...afterRelease))}) after the reader's release`;
            } else if (name !== "quiet table") {
                migration += "; reader held until the migration ended (today's behaviour)";
            }
            return [name, side, ms(median(worst)), ms(Math.max(...worst)), ms(targetMs), Math.max(...worst) <= targetMs ? "yes" : "NO", migration];
        });
        const notes: string[] = [];
        if (sides.length === 2) {
            const quiet = (side: Side) => figures.filter((f) => f.scenario === "quiet table" && f.side === side).map((f) => f.worstMs);
            const [a, p] = [quiet("alembic"), quiet("product")];
            notes.push(
                `quiet table, product vs today's bare alembic: median worst wait ${ms(median(p))} vs ${ms(median(a))}, max ${ms(Math.max(...p))} vs ${ms(Math.max(...a))}` +
                    ` (${median(p) <= median(a) * 1.1 + 50 ? "not slower" : "SLOWER"} at the median, within 10 % + 50 ms)`,
            );
        }
        notes.push(`the migration's DDL on the quiet table (${flags.rows} rows, one transaction, rolled back): ${ddl}`);
        const lines = [
            "",
            `writer wait during the T1.6 migration (${T16_REVISION}): ${flags.rows} rows, ${flags.writers} writers, rounds: ${flags.runs} (each: every scenario, every side, sides' order alternating)`,
            `lock_timeout ${lockTimeout} (bare run's session shows ${sessionLockTimeout}; product: --lock-timeout ${lockTimeout} per try, --lock-retries ${flags["lock-retries"]}, --lock-budget ${lockBudget})`,
            `reader: ACCESS SHARE on reranker_model; product side releases it ${flags["reader-seconds"]} s after the migration starts, alembic side once the migration has ended`,
            `target: worst writer wait <= ${ms(targetMs)} (lock_timeout + 100 ms); behind the reader the product's migration lands once the reader ends; quiet table not slower than today`,
            `machine: ${machineLine(loadBefore)}`,
            "",
            table([["scenario", "via", "median worst wait", "max worst wait", "target", "within", "migration"], ...summary]),
            "",
            ...notes,
            "",
            table([
                ["scenario", "via", "run", "worst wait", "p99", "writes", "migration"],
                ...figures.map((f) => [f.scenario, f.side, String(f.run), worstCell(f), ms(f.p99Ms), String(f.writes), outcome(f)]),
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
