/**
 * Runs the PROTEA fixture's tools (alembic, the backfill, the seeder) with the
 * fixture venv's Python and the database URL in PROTEA_DB_URL, never in argv.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export const PROJECT_ROOT = path.resolve(__dirname, "../../..");
export const FIXTURE_DIR = path.join(PROJECT_ROOT, "test/fixtures/protea");
export const FIXTURE_PYTHON = path.join(PROJECT_ROOT, ".state/venv/bin/python");

/** The revision the runbook expects live before T1.6, and T1.6 itself. */
export const EXPECTED_HEAD = "9d2fb5a07e4c";
export const T16_REVISION = "a3c1d8e2f4b6";

/** Throws, naming the setup script, when the fixture venv has not been built. */
export function requireFixturePython(): string {
    if (!fs.existsSync(FIXTURE_PYTHON)) {
        throw new Error(`The fixture venv is missing (${FIXTURE_PYTHON}): run 'bash scripts/setup-fixture.sh' first.`);
    }
    return FIXTURE_PYTHON;
}

export interface ProcessResult {
    exitCode: number | null;
    stdout: string;
    stderr: string;
    durationMs: number;
}

export interface FixtureRunOptions {
    /** SQLAlchemy URL, passed as PROTEA_DB_URL. */
    dbUrl?: string;
    /** Extra environment (e.g. PROTEA_BACKFILL_FAIL_AFTER_BATCHES). */
    env?: Record<string, string>;
}

/** Runs the venv's python with `args` in the fixture directory. Resolves whatever the exit code. */
export function runFixturePython(args: readonly string[], options: FixtureRunOptions = {}): Promise<ProcessResult> {
    return runApplicationPython(requireFixturePython(), FIXTURE_DIR, "PROTEA_DB_URL", args, options);
}

/** Runs an application fixture's `python` with `args` in `dir`, the URL in `urlVariable` only. Resolves whatever the exit code. */
export function runApplicationPython(python: string, dir: string, urlVariable: string, args: readonly string[], options: FixtureRunOptions = {}): Promise<ProcessResult> {
    // No __pycache__ in the fixture tree: it is source, not a build directory.
    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1", ...options.env };
    delete env[urlVariable];
    if (options.dbUrl) env[urlVariable] = options.dbUrl;
    const started = performance.now();
    return new Promise((resolve, reject) => {
        const child = spawn(python, args, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        child.on("error", reject);
        child.on("close", (exitCode) => resolve({ exitCode, stdout, stderr, durationMs: performance.now() - started }));
    });
}

/** Fails with the command's output when it did not exit 0. */
export function expectSuccess(result: ProcessResult, what: string): ProcessResult {
    if (result.exitCode !== 0) {
        throw new Error(`${what} exited ${result.exitCode}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
    }
    return result;
}

export function alembic(dbUrl: string | undefined, ...args: string[]): Promise<ProcessResult> {
    return runFixturePython(["-m", "alembic", ...args], { dbUrl });
}

/** `alembic current`, reduced to the revision id (undefined at base). */
export async function alembicCurrent(dbUrl: string): Promise<string | undefined> {
    const result = expectSuccess(await alembic(dbUrl, "current"), "alembic current");
    return result.stdout.match(/^([0-9a-f]{12})\b/m)?.[1];
}

export function backfill(dbUrl: string | undefined, args: readonly string[] = [], env: Record<string, string> = {}): Promise<ProcessResult> {
    return runFixturePython(["scripts/backfill_schema_sha_v2.py", ...args], { dbUrl, env });
}

export function seedSample(dbUrl: string, args: readonly string[] = []): Promise<ProcessResult> {
    return runFixturePython(["scripts/seed_sample.py", ...args], { dbUrl });
}

export interface BackfillTableSummary {
    /** `updated=` on a real run, `would_update=` on a dry run. */
    updated: number;
    skipped: number;
    copiedFromDataset?: number;
}

export interface BackfillSummary {
    canonical: string;
    tables: Record<string, BackfillTableSummary>;
}

/** Parses the backfill's `canonical=` header and `<table>: updated=<n> skipped=<n>` lines. */
export function parseBackfillSummary(stdout: string): BackfillSummary {
    const canonical = stdout.match(/canonical=([0-9a-f]+)/)?.[1];
    if (!canonical) throw new Error(`no canonical= line in backfill output:\n${stdout}`);
    const tables: Record<string, BackfillTableSummary> = {};
    const linePattern = /^(\w+): (?:would_update|updated)=(\d+) skipped=(\d+)(?: copied_from_dataset=(\d+))?$/gm;
    for (const match of stdout.matchAll(linePattern)) {
        tables[match[1]] = {
            updated: Number(match[2]),
            skipped: Number(match[3]),
            ...(match[4] !== undefined ? { copiedFromDataset: Number(match[4]) } : {}),
        };
    }
    return { canonical, tables };
}

export type StackConfigValues = Record<string, { value: string; secret?: boolean }>;

/**
 * The prod-shaped stack's config for the fixture: url access, the fixture's
 * alembic and backfill run with the venv's Python, the dump into `backupDir`.
 * `overrides` are `rollout:*` keys without the namespace.
 */
export function fixtureStackConfig(dbUrl: string, backupDir: string, overrides: Record<string, string> = {}): StackConfigValues {
    const config: StackConfigValues = {
        "rollout:dbUrl": { value: dbUrl, secret: true },
        "rollout:pgAccess": { value: "url" },
        "rollout:appDir": { value: FIXTURE_DIR },
        "rollout:alembic": { value: `${FIXTURE_PYTHON} -m alembic` },
        "rollout:backfill": { value: `${FIXTURE_PYTHON} scripts/backfill_schema_sha_v2.py` },
        "rollout:backupDir": { value: backupDir },
        "rollout:protect": { value: "false" },
    };
    for (const [key, value] of Object.entries(overrides)) config[`rollout:${key}`] = { value };
    return config;
}
