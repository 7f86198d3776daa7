/**
 * The drill's restore against the runbook's. Builds a multi-table PROTEA-shaped
 * database of about 1 GB (the fixture's sample plus a bulk embedding table),
 * dumps it with `pg_dump -F c`, then restores that dump twice into fresh
 * clusters: as the runbook does (`pg_restore -d … < file` into a server with
 * default settings) and as the drill does (`pg_restore -j N -d … file` into a
 * throwaway cluster without durability). Prints the figures; asserts nothing.
 *
 *   bash scripts/with-engine.sh npx ts-node --transpile-only bench/restore.ts [--embedding-rows 1000000] [--jobs 2]
 *
 * Target (DESIGN.md): the drill's restore at most 0.6x the runbook's.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PostgresCluster, startPostgresCluster } from "../lib/postgresCluster";
import { run, tail } from "../lib/processes";
import { alembic, EXPECTED_HEAD, expectSuccess, seedSample } from "../test/integration/helpers/fixture";

function flag(name: string, fallback: number): number {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const embeddingRows = flag("embedding-rows", 1_000_000);
const jobs = flag("jobs", 2);
const say = (line: string) => process.stdout.write(`bench: ${line}\n`);

async function timed(what: string, program: string, args: string[], cluster: PostgresCluster, stdinFile?: string): Promise<number> {
    const fd = stdinFile ? fs.openSync(stdinFile, "r") : undefined;
    const started = performance.now();
    try {
        const result = await run(program, args, { env: { ...process.env, ...cluster.libpqEnv }, stdin: fd });
        if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${tail(result.stderr)}`);
    } finally {
        if (fd !== undefined) fs.closeSync(fd);
    }
    const seconds = (performance.now() - started) / 1000;
    say(`${what}: ${seconds.toFixed(1)}s`);
    return seconds;
}

async function withCluster<T>(options: Parameters<typeof startPostgresCluster>[0], use: (cluster: PostgresCluster) => Promise<T>): Promise<T> {
    const cluster = await startPostgresCluster(options);
    try {
        return await use(cluster);
    } finally {
        await cluster.stop();
    }
}

async function main(): Promise<void> {
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-restore-"));
    const dump = path.join(workDir, "source.dump");
    try {
        const size = await withCluster({}, async (source) => {
            say(`source: fixture schema, 2,000 datasets, 200,000 reranker models, ${embeddingRows} embedding rows`);
            expectSuccess(await alembic(source.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
            expectSuccess(await seedSample(source.sqlalchemyUrl, ["--datasets", "2000", "--reranker-models", "200000", "--embedding-rows", String(embeddingRows)]), "seed");
            const result = await run("psql", ["-tAc", "SELECT pg_database_size(current_database())"], { env: { ...process.env, ...source.libpqEnv } });
            await timed("pg_dump -F c", "pg_dump", ["-F", "c", "-f", dump], source);
            return Number(result.stdout.trim());
        });
        say(`database ${(size / 2 ** 30).toFixed(2)} GiB, dump ${(fs.statSync(dump).size / 2 ** 30).toFixed(2)} GiB`);

        const runbook = await withCluster({}, (target) => timed("runbook: pg_restore < file, default server", "pg_restore", ["-d", target.database], target, dump));
        const drill = await withCluster({ durabilityOff: true }, (target) =>
            timed(`drill: pg_restore -j ${jobs} file, durability off`, "pg_restore", ["-j", String(jobs), "--no-owner", "-d", target.database, dump], target),
        );
        // With wal_level=minimal, COPY into a table created in the same transaction skips WAL.
        const single = await withCluster({ durabilityOff: true }, (target) =>
            timed("alternative: pg_restore --single-transaction file, durability off", "pg_restore", ["--single-transaction", "--no-owner", "-d", target.database, dump], target),
        );
        say(`ratio drill/runbook: ${(drill / runbook).toFixed(2)} (target <= 0.6); single-transaction/runbook: ${(single / runbook).toFixed(2)}; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(2)}`);
    } finally {
        fs.rmSync(workDir, { recursive: true, force: true });
    }
}

main().catch((err: Error) => {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exit(1);
});
