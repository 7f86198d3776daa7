/**
 * parseRolloutConfig: every `rollout:*` key read from raw strings, checked and defaulted. Pure:
 * the program, the CLIs and the tests all call it with raw strings.
 */
import * as os from "node:os";
import {
    backupDirProblems, DEFAULT_BACKUP_COMPRESSION, DEFAULT_NEW_COLUMNS, DEFAULT_VERSION_TABLE, NewColumn, parseDuration, parseParityCutover, PgAccess,
    RawConfig, resolveSetting, RolloutConfig, RolloutConfigError, VERSION_TABLE,
} from "./config";
import { LibpqSettings, parseDatabaseUrl } from "./databaseUrl";

// Whatever alembic accepts as a revision id (hex by default, any name with --rev-id).
const REVISION = /^[A-Za-z0-9_]{1,64}$/;
// Variables the application's URL may not take over (rollout:dbUrlEnv).
const RESERVED_VARIABLES = ["PATH", "HOME", "SHELL", "USER", "PWD", "IFS", "PG*", "PULUMI_*", "LD_*", "PYTHON*", "PROTEA_DB_PASSWORD_FILE", "PROTEA_APP_DB_URL_VARIABLE"];
// rollout:newColumns names: lower-case SQL identifiers.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Validates raw `rollout:*` values (key names without the namespace) and fills
 * defaults. `dbUrl` is required; its value never appears in an error. Relative
 * `appDir` and `backupDir` are resolved against `baseDir`.
 */
export function parseRolloutConfig(raw: RawConfig, home = os.homedir(), baseDir = process.cwd()): RolloutConfig {
    // Relative paths are relative to the project (the drill's fixture checkout).
    const directory = (p: string) => resolveSetting(p, baseDir, home);
    const problems: string[] = [];
    const text = (key: string, fallback: string): string => {
        const value = raw[key];
        if (value === undefined) return fallback;
        if (value.trim() === "") problems.push(`rollout:${key} is empty; unset it to use the default "${fallback}"`);
        return value;
    };
    const integer = (key: string, fallback: number, min: number, max: number): number => {
        const value = raw[key];
        if (value === undefined) return fallback;
        const n = Number(value);
        if (!Number.isInteger(n) || n < min || n > max) {
            problems.push(`rollout:${key} must be a whole number from ${min} to ${max}, got "${value}"`);
            return fallback;
        }
        return n;
    };
    const flag = (key: string, fallback: boolean): boolean => {
        const value = raw[key];
        if (value === undefined) return fallback;
        if (value !== "true" && value !== "false") {
            problems.push(`rollout:${key} must be true or false, got "${value}"`);
            return fallback;
        }
        return value === "true";
    };
    const revision = (key: string, fallback: string): string => {
        const value = text(key, fallback);
        if (!REVISION.test(value)) problems.push(`rollout:${key} must be an alembic revision id (letters, digits, "_"), got "${value}"`);
        return value;
    };

    const pgAccess = text("pgAccess", "docker-exec");
    if (pgAccess !== "docker-exec" && pgAccess !== "url") {
        problems.push(`rollout:pgAccess must be "docker-exec" or "url", got "${pgAccess}"`);
    }

    let database: LibpqSettings = { host: "", port: 0, user: "", database: "" };
    if (raw.dbUrl === undefined || raw.dbUrl === "") {
        problems.push("rollout:dbUrl is not set: run `pulumi config set --secret rollout:dbUrl 'postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB'`");
    } else {
        try {
            database = parseDatabaseUrl(raw.dbUrl);
        } catch (err) {
            problems.push((err as Error).message);
        }
    }

    let newColumns = DEFAULT_NEW_COLUMNS;
    if (raw.newColumns) {
        newColumns = parseNewColumns(raw.newColumns, problems);
    }

    const expectedHead = revision("expectedHead", "9d2fb5a07e4c");
    const targetRevision = revision("targetRevision", "a3c1d8e2f4b6");
    if (expectedHead === targetRevision) {
        problems.push("rollout:targetRevision equals rollout:expectedHead: there is nothing to migrate");
    }
    const alembicVersionTable = text("alembicVersionTable", DEFAULT_VERSION_TABLE);
    if (!VERSION_TABLE.test(alembicVersionTable)) problems.push(`rollout:alembicVersionTable must be a table or schema.table name as alembic's env.py sets it (version_table, version_table_schema), got "${alembicVersionTable}"`);
    const lockTimeout = text("lockTimeout", "2s");
    const lockTimeoutMs = parseDuration(lockTimeout);
    if (lockTimeoutMs === undefined || lockTimeoutMs < 1 || lockTimeoutMs > 600_000) problems.push(`rollout:lockTimeout must be a duration from 1ms to 10min like 2s, 1500ms or 1min, got "${lockTimeout}"`);
    const lockRetries = integer("lockRetries", 10, 0, 1000);
    const lockRetryBudget = text("lockRetryBudget", "2min");
    const lockRetryBudgetMs = parseDuration(lockRetryBudget);
    if (lockRetryBudgetMs === undefined) problems.push(`rollout:lockRetryBudget must be a duration like 90s or 2min, got "${lockRetryBudget}"`);
    const stepTimeout = text("stepTimeout", "4h");
    const stepTimeoutMs = parseDuration(stepTimeout);
    if (stepTimeoutMs === undefined || stepTimeoutMs < 1000) problems.push(`rollout:stepTimeout must be a duration of at least 1s like 90s, 30min or 4h, got "${stepTimeout}"`);
    const appDirSetting = text("appDir", "~/Thesis2/repositories/PROTEA");
    const backupDirSetting = text("backupDir", "~/Thesis2/backups");
    problems.push(...backupDirProblems(directory(backupDirSetting)));
    const backupLabel = text("backupLabel", "pre-t16");
    if (!/^[A-Za-z0-9._-]+$/.test(backupLabel)) problems.push(`rollout:backupLabel may hold only letters, digits, ".", "_" and "-", got "${backupLabel}"`);
    const backupCompressionRaw = raw.backupCompression;
    let backupCompression = DEFAULT_BACKUP_COMPRESSION;
    if (backupCompressionRaw !== undefined) {
        if (!/^[0-9]$/.test(backupCompressionRaw)) {
            problems.push(`rollout:backupCompression must be a gzip level for pg_dump -Z, a whole number from 0 (no compression) to 9 (smallest, slowest), got "${backupCompressionRaw}"`);
        } else {
            backupCompression = Number(backupCompressionRaw);
        }
    }

    const rehearsalSetting = raw.rehearsal || undefined;
    const budgetFloor = text("budgetFloor", "1min");
    const budgetFloorMs = parseDuration(budgetFloor);
    if (budgetFloorMs === undefined || budgetFloorMs < 1000) problems.push(`rollout:budgetFloor must be a duration of at least 1s like 30s or 2min, got "${budgetFloor}"`);
    const rehearsal = rehearsalSetting
        ? {
              file: directory(rehearsalSetting),
              setting: rehearsalSetting,
              sizeFactor: integer("rehearsalSizeFactor", 4, 2, 1_000_000),
              budget: { multiple: integer("budgetMultiple", 3, 1, 1000), floorMs: budgetFloorMs ?? 60_000 },
          }
        : undefined;

    const cutover = parseParityCutover(raw.parityCutover || undefined, raw.parityCutoverColumn || undefined);
    if (cutover.problem) problems.push(cutover.problem);

    const dbUrlEnv = text("dbUrlEnv", "PROTEA_DB_URL");
    const reserved = RESERVED_VARIABLES.find((r) => (r.endsWith("*") ? dbUrlEnv.startsWith(r.slice(0, -1)) : dbUrlEnv === r));
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(dbUrlEnv)) problems.push(`rollout:dbUrlEnv must be an environment variable name (letters, digits, "_"), got "${dbUrlEnv}"`);
    else if (reserved) problems.push(`rollout:dbUrlEnv cannot be ${dbUrlEnv}: ${reserved} is used by the shell, libpq, Pulumi or the product itself; name the variable the application reads (e.g. DATABASE_URL)`);

    const config: RolloutConfig = {
        appDir: directory(appDirSetting),
        appDirSetting,
        alembic: text("alembic", "poetry run alembic"),
        backfill: text("backfill", "poetry run python scripts/backfill_schema_sha_v2.py"),
        expectedHead,
        targetRevision,
        alembicVersionTable,
        database,
        pgAccess: pgAccess as PgAccess,
        container: text("container", "protea-postgres-1"),
        dbUser: text("dbUser", "protea"),
        dbName: text("dbName", "protea"),
        backupDir: directory(backupDirSetting),
        backupDirSetting,
        backupLabel,
        backupCompression,
        batchSize: integer("batchSize", 100, 1, 1_000_000),
        forceBackfill: flag("forceBackfill", false),
        newColumns,
        pauseWriters: raw.pauseWriters || undefined,
        resumeWriters: raw.resumeWriters || undefined,
        lockTimeout,
        lockRetries,
        lockRetryBudget,
        stepTimeout,
        stepTimeoutMs: stepTimeoutMs ?? 0,
        resumeOnFailure: flag("resumeOnFailure", true),
        paritySample: integer("paritySample", 10, 1, 10_000),
        parityCutover: cutover.cutover,
        rehearsal,
        restoreJobs: integer("restoreJobs", 2, 1, 64),
        protect: flag("protect", true),
        dbPasswordFile: raw.dbPasswordFile || undefined,
        dbUrlEnv,
    };
    if (config.dbPasswordFile && database.password !== undefined) {
        problems.push("rollout:dbUrl holds a password, but rollout:dbPasswordFile is set: remove the password from the URL (`pulumi config set --secret rollout:dbUrl 'postgresql+psycopg://USER@HOST:PORT/DB'`)");
    }
    if (problems.length > 0) throw new RolloutConfigError(problems);
    return config;
}

function parseNewColumns(value: string, problems: string[]): NewColumn[] {
    const usage = 'rollout:newColumns must be a JSON list of {"table","column","index","legacyColumn"} objects';
    let parsed: unknown;
    try {
        parsed = JSON.parse(value);
    } catch {
        problems.push(`${usage}; it is not valid JSON`);
        return DEFAULT_NEW_COLUMNS;
    }
    if (!Array.isArray(parsed) || parsed.length === 0) {
        problems.push(`${usage}, with at least one entry`);
        return DEFAULT_NEW_COLUMNS;
    }
    const columns: NewColumn[] = [];
    for (const [i, entry] of parsed.entries()) {
        const fields = ["table", "column", "index", "legacyColumn"] as const;
        const bad = fields.filter((f) => typeof entry?.[f] !== "string" || !IDENTIFIER.test(entry[f]));
        if (bad.length > 0) {
            problems.push(`${usage}; entry ${i} has a missing or invalid ${bad.join(", ")} (lower-case SQL identifiers)`);
            continue;
        }
        columns.push({ table: entry.table, column: entry.column, index: entry.index, legacyColumn: entry.legacyColumn });
    }
    return columns;
}

/** Every key the program reads, so the entry point and the CLIs read the same set. */
export const CONFIG_KEYS = [
    "appDir", "alembic", "backfill", "expectedHead", "targetRevision", "alembicVersionTable", "dbUrl", "pgAccess",
    "container", "dbUser", "dbName", "backupDir", "backupLabel", "backupCompression", "batchSize", "forceBackfill",
    "newColumns", "pauseWriters", "resumeWriters", "lockTimeout", "lockRetries", "lockRetryBudget", "stepTimeout", "resumeOnFailure", "paritySample", "parityCutover", "parityCutoverColumn", "rehearsal", "rehearsalSizeFactor", "budgetMultiple", "budgetFloor", "restoreJobs", "protect", "dbPasswordFile", "dbUrlEnv",
] as const;
