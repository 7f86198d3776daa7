/**
 * What the product adds to the rollout: the operator's `npm run pulumi -- up
 * --yes --skip-preview` of the prod-shaped stack plus its rollback
 * (`npm run rollback -- --stack <name> --yes`), next to
 * the runbook's own commands by hand, in its order, on one cluster seeded
 * with the fixture:
 *
 *   pg_dump -F c (the default compression, no -Z, as the runbook's) and
 *   pg_restore --list of the dump; alembic current and heads; alembic
 *   upgrade; one psql schema check; the backfill's --dry-run and apply; one
 *   psql NULL count; alembic downgrade.
 *
 * Each side ends where it started (the expected head, no new columns), and
 * the dumps are removed between runs (their sizes are printed). One warm-up
 * run of each side is not counted; then `--rounds` rounds alternate which
 * side goes first. Prints the database's size, every round with the load
 * average at its start, the medians and their ratio; asserts nothing.
 *
 * The data: the fixture's dataset and reranker_model (`--datasets`,
 * `--models`: what the backfill fills), the seeder's bulk dataset_embedding
 * (`--embedding-rows`, real[256], about 1.2 KiB a row with its primary key)
 * and, with `--go-predictions`, a bench-only go_prediction table shaped like
 * PROTEA's (typed columns, a `features` jsonb and a `predictions_jsonb` with
 * PROTEA's GIN index `ix_go_prediction_jsonb_gin`, B-trees on
 * (prediction_set_id, protein_accession) and go_term_id; about 0.45 KiB a row
 * with its indexes). Production scale (the issue's >= 1.5 GB):
 * `--embedding-rows 1000000 --go-predictions 1000000`, about 1.6 GiB (1.7 GB).
 *
 * A third side is the engine's floor (bench/nullGraph.ts): the same resource
 * graph with every command `true`, `pulumi up` and the rollback's targeted
 * `pulumi destroy`. By hand plus that floor is the best any Pulumi program
 * running the runbook's own commands can do; the product's excess over it is
 * its own cost (its backup's `pg_dump -Z` is rollout:backupCompression, 1 by
 * default, so on a large database it can end below that floor).
 *
 * Targets (issue 12, P1): at most 1.6x by hand at 3,000 datasets + 12,000
 * models, 1.05x at 30,000 + 300,000; at production scale (>= 1.5 GB), at
 * most 0.5x.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RolloutConfig } from "../lib/config/config";
import { parseRolloutConfig } from "../lib/config/parseRolloutConfig";
import { PostgresCluster, startPostgresCluster } from "../lib/postgres/cluster/cluster";
import { runShell, tail } from "../lib/process/processes";
import { andThen, commandLine, inDirectory, quote, stepMillis, timed } from "../lib/process/shell";
import { queryRows, queryScalar, withDb } from "../test/integration/helpers/db";
import { newTestStack, npmRun, TestStack } from "../test/integration/helpers/engine";
import { alembic, EXPECTED_HEAD, expectSuccess, fixtureStackConfig, PROJECT_ROOT, seedSample } from "../test/integration/helpers/fixture";
import { benchFlags, loadAverage, machineLine, median, must, removeNow, removeOnExit, say, table } from "./common";
import { graphFromPreview, nullGraphUrn, writeNullGraphProgram } from "./nullGraph";

const CLI = {
    usage: "bash scripts/with-engine.sh npx ts-node --transpile-only bench/rollout.ts",
    description: `pulumi up + rollback through the product against the runbook's commands by hand
(figures only, asserts nothing).

Production scale (the issue's >= 1.5 GB, goal 0.5x by hand): --embedding-rows
1000000 --go-predictions 1000000, about 1.6 GiB; each round then takes about
8 minutes on 2 cores (the whole run with 3 rounds about 35), most of it the
runbook's pg_dump at its default compression.

Progress goes to stderr ("bench: ..."), the summary to stdout.`,
    flags: {
        rounds: { default: 3, min: 1, description: "counted rounds after one warm-up of each side, alternating which side goes first" },
        datasets: { default: 3000, min: 1, description: "datasets to seed" },
        models: { default: 12_000, min: 0, description: "reranker models to seed; the backfill fills both tables: 30000 and 300000 is the large size" },
        "embedding-rows": { default: 0, min: 0, description: "dataset_embedding rows to seed; about 1.2 KiB each with the primary key, so 1000000 is about 1.13 GiB" },
        "go-predictions": {
            default: 0,
            min: 0,
            description: "rows of a bench-only go_prediction table shaped like PROTEA's (jsonb with a GIN index, B-trees); 0 leaves it out. Production scale (>= 1.5 GB): --embedding-rows 1000000 --go-predictions 1000000, about 1.6 GiB",
        },
    },
} as const;

const flags = benchFlags(CLI);

/** The production-scale goal's size (the issue's 1.5 GB), for pg_database_size. */
const PRODUCTION_BYTES = 1.5e9;

/** One run of a side: its wall time, and what it is made of. */
interface SideRun {
    seconds: number;
    parts: Record<string, number>;
    /** Something that ran in it that is not the side's usual work. */
    note?: string;
    /** Bytes of the .dump files it left in the backup folder (removed after each run). */
    dumpBytes?: number;
}

interface Side {
    name: string;
    run(): Promise<SideRun>;
}

const sql = (text: string) => quote(text.replace(/\s+/g, " ").trim());
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/**
 * PROTEA's go_prediction as its migrations leave it, reduced to what gives a
 * dump and an index their size: typed prediction columns, the per-row
 * `features` jsonb (T3.1a) and `predictions_jsonb` with its GIN index (T3.1),
 * the composite B-tree `ix_go_prediction_set_accession` and one on go_term_id
 * (as PROTEA indexes its FK columns; no FK here).
 * Bench-only: the fixture's migrations never touch it, nor do the runbook's.
 * Rows go in first, server-side in chunks, then the indexes, then ANALYZE.
 */
async function seedGoPredictions(config: PostgresCluster["clientConfig"], rows: number): Promise<void> {
    const chunk = 100_000;
    await withDb(config, async (client) => {
        await client.query(`CREATE TABLE go_prediction (
            id bigint PRIMARY KEY,
            prediction_set_id integer NOT NULL,
            protein_accession varchar(20) NOT NULL,
            go_term_id integer NOT NULL,
            score double precision NOT NULL,
            evidence_code varchar(10),
            features jsonb,
            predictions_jsonb jsonb
        )`);
        const started = performance.now();
        for (let low = 1; low <= rows; low += chunk) {
            const high = Math.min(rows, low + chunk - 1);
            await client.query(`INSERT INTO go_prediction
                SELECT g, set_id, accession, go_term_id, score, evidence_code,
                       jsonb_build_object('identity', round(random()::numeric, 4), 'evalue', round((random() * 1e-3)::numeric, 8),
                                          'distance', round(random()::numeric, 4), 'k_position', g % 10, 'taxonomic_distance', g % 30,
                                          'ia', round((random() * 12)::numeric, 3), 'association_total', g % 97, 'vote_count', 1 + g % 5),
                       jsonb_build_object('go_term_id', go_term_id, 'score', round(score::numeric, 4), 'evidence_code', evidence_code)
                FROM (SELECT g, 1 + g % 40 AS set_id, format('%s%s', (ARRAY['P', 'Q', 'O', 'A'])[1 + g % 4], lpad((g / 20 % 100000)::text, 5, '0')) AS accession,
                             1 + (g * 7919) % 45000 AS go_term_id, random() AS score, (ARRAY['IEA', 'ISS', 'IBA', 'IDA', 'IPI', 'EXP'])[1 + g % 6] AS evidence_code
                      FROM generate_series(${low}::bigint, ${high}::bigint) g) p`);
            if (high === rows || (high / chunk) % 5 === 0) say(`go_prediction: ${high}/${rows} rows (${((performance.now() - started) / 1000).toFixed(0)} s)`);
        }
        for (const index of [
            "CREATE INDEX ix_go_prediction_set_accession ON go_prediction (prediction_set_id, protein_accession)",
            "CREATE INDEX ix_go_prediction_go_term_id ON go_prediction (go_term_id)",
            "CREATE INDEX ix_go_prediction_jsonb_gin ON go_prediction USING gin (predictions_jsonb)",
        ]) {
            await client.query(index);
        }
        await client.query("ANALYZE go_prediction");
        say(`go_prediction: ${rows} rows and 3 indexes in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    });
}

/** The runbook's steps as an operator types them, in its order, each timed (lib/process/shell.ts `timed`). */
function runbookSteps(config: RolloutConfig, dump: string): { label: string; what: string; command: string }[] {
    const inApp = (command: string) => inDirectory(config.appDir, command);
    // The product's migrate step sets this lock_timeout too; the runbook does not, and it costs nothing here.
    const withLockTimeout = `PGOPTIONS=${quote(`-c lock_timeout=${config.lockTimeout}`)}`;
    const columns = config.newColumns;
    const schemaCheck = `SELECT (SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND (table_name, column_name) IN (${columns.map((c) => `(${literal(c.table)}, ${literal(c.column)})`).join(", ")})),
        (SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN (${columns.map((c) => literal(c.index)).join(", ")}))`;
    const nullCount = `SELECT ${columns.map((c) => `(SELECT count(*) FROM ${c.table} WHERE ${c.column} IS NULL)`).join(", ")}`;
    return [
        { label: "backup", what: "pg_dump -F c + pg_restore --list", command: andThen(`mkdir -p ${quote(path.dirname(dump))}`, commandLine("pg_dump", "-F", "c", "-f", dump), `${commandLine("pg_restore", "--list", dump)} >/dev/null`) },
        { label: "revisions", what: "alembic current + heads", command: inApp(`${config.alembic} current && ${config.alembic} heads`) },
        { label: "upgrade", what: "alembic upgrade", command: inApp(`${withLockTimeout} ${config.alembic} upgrade ${quote(config.targetRevision)}`) },
        { label: "schema", what: "psql schema check", command: `psql -tAc ${sql(schemaCheck)}` },
        { label: "dryrun", what: "backfill --dry-run", command: inApp(`${config.backfill} --dry-run`) },
        { label: "apply", what: "backfill apply", command: inApp(`${config.backfill} --batch-size ${config.batchSize}`) },
        { label: "nulls", what: "psql NULL count", command: `psql -tAc ${sql(nullCount)}` },
        { label: "downgrade", what: "alembic downgrade", command: inApp(`${withLockTimeout} ${config.alembic} downgrade ${quote(config.expectedHead)}`) },
    ];
}

function byHand(config: RolloutConfig, cluster: PostgresCluster): Side {
    const steps = runbookSteps(config, path.join(config.backupDir, `${config.backupLabel}-by-hand.dump`));
    const script = andThen(...steps.map((s) => timed(s.label, s.command)));
    const env = { ...process.env, ...cluster.libpqEnv, PROTEA_DB_URL: cluster.sqlalchemyUrl };
    return {
        name: "by hand",
        async run() {
            const started = performance.now();
            const result = await runShell(script, { env });
            const seconds = (performance.now() - started) / 1000;
            if (result.code !== 0) throw new Error(`by hand failed (exit ${result.code}):\n${tail(result.stderr)}`);
            return { seconds, parts: Object.fromEntries(steps.map((s) => [s.what, (stepMillis(result.stderr, s.label) ?? NaN) / 1000])) };
        },
    };
}

function throughPulumi(testStack: TestStack): Side {
    return {
        name: "npm run pulumi -- up + npm run rollback",
        async run() {
            const started = performance.now();
            // The operator's command, as the README gives it (no preview: that is the dry run, timed by bench/preview.ts).
            const up = await npmRun(PROJECT_ROOT, "pulumi", ["up", "--yes", "--skip-preview", "--stack", testStack.stack.name], testStack.env);
            const upDone = performance.now();
            if (up.code !== 0) throw new Error(`npm run pulumi -- up failed (exit ${up.code}):\n${tail(up.output)}`);
            // The operator's rollback command, as the README gives it.
            const rollback = await npmRun(PROJECT_ROOT, "rollback", ["--stack", testStack.stack.name, "--yes"], testStack.env);
            const ended = performance.now();
            if (rollback.code !== 0) throw new Error(`npm run rollback failed (exit ${rollback.code}):\n${tail(rollback.output)}`);
            // `npm run rollback` rebuilds the tools when bin/, lib/ or components/ changed since the last build (scripts/build-tools.sh).
            const note = /tools: compiling/.test(rollback.output) ? "the rollback recompiled the tools (sources changed)" : undefined;
            return { seconds: (ended - started) / 1000, parts: { "pulumi up": (upDone - started) / 1000, rollback: (ended - upDone) / 1000 }, note };
        },
    };
}

/** The same graph with nothing in it: \`pulumi up\`, then the destroy the rollback runs (the Migration and its dependents). */
function engineFloor(dir: string, stack: string, migrationUrn: string, env: Record<string, string>): Side {
    const pulumi = (...args: string[]) => inDirectory(dir, commandLine("pulumi", ...args, "--stack", stack, "--non-interactive", "--yes", "--skip-preview"));
    return {
        name: "the same graph, every command true",
        async run() {
            const started = performance.now();
            await must("the null graph's up", pulumi("up"), { ...env, NULL_GRAPH_RUN: String(started) });
            const upDone = performance.now();
            await must("the null graph's destroy", pulumi("destroy", "--target", migrationUrn, "--target-dependents"), env);
            const ended = performance.now();
            return { seconds: (ended - started) / 1000, parts: { "pulumi up": (upDone - started) / 1000, "pulumi destroy --target": (ended - upDone) / 1000 } };
        },
    };
}

const secs = (value: number) => (Number.isNaN(value) ? "?" : `${value.toFixed(2)} s`);
const size = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
/** The 1-minute figure of {@link loadAverage}'s "1 5 15". */
const loadNow = (loads: string) => Number(loads.split(" ")[0]);
const breakdown = (run: SideRun) => Object.values(run.parts).map(secs).join(" + ");

async function main(): Promise<void> {
    const loadBefore = loadAverage();
    say(`rounds: ${flags.rounds} after one warm-up of each side; embedding rows: ${flags["embedding-rows"]}; go_prediction rows: ${flags["go-predictions"]}; load average ${loadBefore}`);
    const workDir = removeOnExit(fs.mkdtempSync(path.join(os.tmpdir(), "protea-bench-rollout-")));
    const backupDir = path.join(workDir, "backups");
    const cluster = await startPostgresCluster({ log: say });
    let testStack: TestStack | undefined;
    try {
        expectSuccess(await alembic(cluster.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
        say(`seeding ${flags.datasets} datasets, ${flags.models} reranker models, ${flags["embedding-rows"]} embedding rows`);
        expectSuccess(
            await seedSample(cluster.sqlalchemyUrl, ["--datasets", String(flags.datasets), "--reranker-models", String(flags.models), "--embedding-rows", String(flags["embedding-rows"])]),
            "seed",
        );
        if (flags["go-predictions"] > 0) await seedGoPredictions(cluster.clientConfig, flags["go-predictions"]);
        const databaseBytes = Number(await queryScalar(cluster.clientConfig, "SELECT pg_database_size(current_database())"));
        const tableSizes = await queryRows<{ name: string; bytes: string }>(
            cluster.clientConfig,
            `SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY 2 DESC, 1`,
        );
        const indexKinds = await queryRows<{ method: string; n: string }>(
            cluster.clientConfig,
            `SELECT am.amname AS method, count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = c.relam
             WHERE c.relkind = 'i' AND n.nspname = current_schema() GROUP BY 1 ORDER BY 1`,
        );
        const tablesLine = `${tableSizes.map((t) => `${t.name} ${size(Number(t.bytes))}`).join(", ")} (with indexes); indexes: ${indexKinds.map((k) => `${k.n} ${k.method}`).join(", ")}`;
        say(`database ${size(databaseBytes)}: ${tablesLine}`);

        const stackConfig = fixtureStackConfig(cluster.sqlalchemyUrl, backupDir);
        const config = parseRolloutConfig(Object.fromEntries(Object.entries(stackConfig).map(([key, { value }]) => [key.replace(/^rollout:/, ""), value])), os.homedir(), PROJECT_ROOT);
        testStack = await newTestStack(PROJECT_ROOT, stackConfig);
        // Its own remove() runs in `finally`; these cover a signal.
        removeOnExit(path.join(PROJECT_ROOT, `Pulumi.${testStack.stack.name}.yaml`));
        removeOnExit(testStack.env.PULUMI_BACKEND_URL.replace(/^file:\/\//, ""));

        // The product's graph as its preview declares it, rebuilt with nothing in it (bench/nullGraph.ts).
        const preview = await must("the product's preview", inDirectory(PROJECT_ROOT, commandLine("pulumi", "preview", "--json", "--non-interactive", "--stack", testStack.stack.name)), testStack.env);
        const graph = graphFromPreview(preview.stdout);
        const migration = graph.find((r) => r.type === "protea:rollout:Migration");
        if (!migration) throw new Error("the product's preview declares no protea:rollout:Migration");
        const floorDir = path.join(workDir, "null-graph");
        const floorStack = `${testStack.stack.name}-floor`;
        writeNullGraphProgram(floorDir, "null-graph", graph);
        await must("pulumi stack init (null graph)", inDirectory(floorDir, commandLine("pulumi", "stack", "init", floorStack, "--non-interactive")), testStack.env);
        say(`the null graph: ${graph.length} resources (${graph.filter((r) => r.type === "command:local:Command").length} commands)`);

        const [hand, pulumi, floor] = [byHand(config, cluster), throughPulumi(testStack), engineFloor(floorDir, floorStack, nullGraphUrn(migration.urn, floorStack, "null-graph"), testStack.env)];
        const runSide = async (side: Side, label: string): Promise<SideRun> => {
            const result = await side.run();
            const dumps = fs.existsSync(backupDir) ? fs.readdirSync(backupDir).filter((f) => f.endsWith(".dump")) : [];
            if (dumps.length) result.dumpBytes = dumps.reduce((sum, f) => sum + fs.statSync(path.join(backupDir, f)).size, 0);
            removeNow(backupDir);
            const dumpNote = result.dumpBytes === undefined ? "" : `; dump ${size(result.dumpBytes)}`;
            say(`${label}: ${side.name} ${secs(result.seconds)} (${Object.keys(result.parts).join(" + ")}: ${breakdown(result)})${dumpNote}${result.note ? `; ${result.note}` : ""}`);
            return result;
        };

        // The first run of each side pays for cold caches (node modules, Python imports, the plugin): not counted.
        await runSide(hand, "warm-up");
        await runSide(pulumi, "warm-up");
        await runSide(floor, "warm-up");
        const rounds: { first: string; load: string; hand: SideRun; pulumi: SideRun; floor: SideRun }[] = [];
        for (let i = 1; i <= flags.rounds; i++) {
            const load = loadAverage();
            say(`round ${i}/${flags.rounds}: load average ${load}`);
            // The warm-up ran by hand first; round 1 starts with pulumi, then they alternate.
            const order = i % 2 === 1 ? [pulumi, hand, floor] : [floor, hand, pulumi];
            const results = new Map<Side, SideRun>();
            for (const side of order) results.set(side, await runSide(side, `round ${i}/${flags.rounds}`));
            rounds.push({ first: order[0].name, load, hand: results.get(hand)!, pulumi: results.get(pulumi)!, floor: results.get(floor)! });
        }

        const handMedian = median(rounds.map((r) => r.hand.seconds));
        const pulumiMedian = median(rounds.map((r) => r.pulumi.seconds));
        const floorMedian = median(rounds.map((r) => r.floor.seconds));
        const ratio = pulumiMedian / handMedian;
        const roundLoads = rounds.map((r) => loadNow(r.load));
        const dumpSize = (run: SideRun) => (run.dumpBytes === undefined ? "-" : size(run.dumpBytes));
        const productionGoal =
            databaseBytes >= PRODUCTION_BYTES ? `at most 0.5x at >= 1.5 GB: ${ratio <= 0.5 ? "met" : "not met"}` : "at most 0.5x at >= 1.5 GB: this database is smaller";
        const partMedians = (pick: (r: (typeof rounds)[number]) => SideRun) =>
            Object.keys(pick(rounds[0]).parts).map((part) => `${part} ${secs(median(rounds.map((r) => pick(r).parts[part])))}`).join(", ");
        const lines = [
            "",
            `rollout: pulumi up + rollback vs the runbook's commands by hand; rounds: ${flags.rounds}, after one uncounted warm-up of each side`,
            `data: ${flags.datasets} datasets, ${flags.models} reranker models, ${flags["embedding-rows"]} embedding rows, ${flags["go-predictions"]} go_prediction rows; database ${size(databaseBytes)} (${(databaseBytes / 1e9).toFixed(2)} GB)`,
            `tables: ${tablesLine}`,
            `machine: ${machineLine(loadBefore)}`,
            "",
            table([
                ["round", "first", "load at start", "by hand", "its dump", "pulumi up + rollback", "(up + rollback)", "its dump", "null graph up + destroy"],
                ...rounds.map((r, i) => [
                    String(i + 1),
                    r.first,
                    r.load,
                    secs(r.hand.seconds),
                    dumpSize(r.hand),
                    secs(r.pulumi.seconds),
                    breakdown(r.pulumi) + (r.pulumi.note ? `  (${r.pulumi.note})` : ""),
                    dumpSize(r.pulumi),
                    `${secs(r.floor.seconds)} (${breakdown(r.floor)})`,
                ]),
                ["median", "", "", secs(handMedian), "", secs(pulumiMedian), "", "", secs(floorMedian)],
            ]),
            "",
            `load average (1 min) at the rounds' starts: ${Math.min(...roundLoads).toFixed(2)}–${Math.max(...roundLoads).toFixed(2)}`,
            `dumps: by hand (pg_dump -F c, default compression) ${dumpSize(rounds[0].hand)}; the product's (-Z ${config.backupCompression}, rollout:backupCompression) ${dumpSize(rounds[0].pulumi)}`,
            `ratio of medians, pulumi / by hand: ${ratio.toFixed(2)}x (targets: at most 1.6x at 3,000 + 12,000 rows, 1.05x at 30,000 + 300,000; ${productionGoal})`,
            `floor, by hand + the null graph's up and destroy: ${secs(handMedian + floorMedian)} = ${((handMedian + floorMedian) / handMedian).toFixed(2)}x by hand; the product above the floor: ${secs(pulumiMedian - handMedian - floorMedian)}`,
            `by hand, median per step: ${partMedians((r) => r.hand)}`,
            `pulumi, median per part: ${partMedians((r) => r.pulumi)}`,
            `null graph, median per part: ${partMedians((r) => r.floor)}`,
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
    } finally {
        await testStack?.remove().catch((err: Error) => say(`removing the stack: ${err.message}`));
        await cluster.stop();
        removeNow(workDir);
    }
}

main().catch((err: Error) => {
    say(err.message);
    process.exit(1);
});
