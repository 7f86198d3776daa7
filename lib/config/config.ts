/**
 * The rollout's configuration: every `rollout:*` key, its default (the T1.6
 * values of the runbook) and its validation, in one place. Pure: the program,
 * the CLIs and the tests all call `parseRolloutConfig` with raw strings.
 */
import * as os from "node:os";
import * as path from "node:path";
import { parseDatabaseUrl, LibpqSettings } from "./databaseUrl";

/** One additive column the migration adds, with the index on it. */
export interface NewColumn {
    table: string;
    column: string;
    index: string;
    /** The older column the parity report compares against. */
    legacyColumn: string;
}

export type PgAccess = "docker-exec" | "url";

export interface RolloutConfig {
    /** Resolved for this checkout (probes, CLIs); commands get `appDirSetting`. */
    appDir: string;
    /** As configured: what stored commands carry, resolved by the tool at run time. */
    appDirSetting: string;
    alembic: string;
    backfill: string;
    expectedHead: string;
    targetRevision: string;
    /** alembic's version table, where the gates read `alembic current` (rollout:alembicVersionTable). */
    alembicVersionTable: string;
    database: LibpqSettings;
    pgAccess: PgAccess;
    container: string;
    dbUser: string;
    dbName: string;
    backupDir: string;
    backupDirSetting: string;
    backupLabel: string;
    /** rollout:backupCompression: the gzip level of the backup's `pg_dump -F c -Z N` (0 = none). */
    backupCompression: number;
    batchSize: number;
    forceBackfill: boolean;
    newColumns: NewColumn[];
    pauseWriters?: string;
    resumeWriters?: string;
    /** The lock-aware apply: lock_timeout of each try, tries after the first, and the time all tries may take. */
    lockTimeout: string;
    lockRetries: number;
    lockRetryBudget: string;
    /** Longest a step may run before it is stopped (rollout:stepTimeout), as configured and in ms. */
    stepTimeout: string;
    stepTimeoutMs: number;
    /** Resume writers when a step fails after they were paused. */
    resumeOnFailure: boolean;
    paritySample: number;
    /**
     * rollout:rehearsal, a drill's JSON report: the preview compares production
     * with it, each step's budget derives from it (lib/runbook/rehearsal.ts).
     */
    rehearsal?: { file: string; setting: string; sizeFactor: number; budget: BudgetPolicy };
    /** rollout:parityCutover (+ rollout:parityCutoverColumn): rows after it must have legacy = v2; unset: the parity sample is reported only. */
    parityCutover?: ParityCutover;
    restoreJobs: number;
    protect: boolean;
    /**
     * rollout:dbPasswordFile as configured: the password is read from it at
     * run time by every command, so neither state nor engine logs hold it.
     */
    dbPasswordFile?: string;
}

export const DEFAULT_NEW_COLUMNS: NewColumn[] = [
    { table: "dataset", column: "schema_sha_v2", index: "ix_dataset_schema_sha_v2", legacyColumn: "schema_sha" },
    { table: "reranker_model", column: "schema_sha_v2", index: "ix_reranker_model_schema_sha_v2", legacyColumn: "feature_schema_sha" },
];

/** Raised for bad configuration; lists every problem and the key that fixes it. */
export class RolloutConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid rollout configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "RolloutConfigError";
    }
}

export type RawConfig = Record<string, string | undefined>;

// Whatever alembic accepts as a revision id (hex by default, any name with --rev-id).
const REVISION = /^[A-Za-z0-9_]{1,64}$/;
const DURATION = /^(\d+)(ms|s|min|h)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000 };

/** "90s", "30min", "4h" in milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
    const match = DURATION.exec(text.trim());
    return match ? Number(match[1]) * DURATION_MS[match[2]] : undefined;
}

/**
 * rollout:backupCompression's default: gzip level 1. bench/backup.ts on a
 * 1.16 GiB PROTEA-shaped database: pg_dump's own default (level 6) spends
 * most of its time in gzip; level 1 took 0.17x its time for 1.10x its size
 * (figures in Pulumi.yaml).
 */
export const DEFAULT_BACKUP_COMPRESSION = 1;
/** alembic's own default version table. */
export const DEFAULT_VERSION_TABLE = "alembic_version";
/** rollout:alembicVersionTable: `table` or `schema.table`, as alembic's env.py names it (version_table, version_table_schema). */
export const VERSION_TABLE = /^(?:[A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$/;

/** rollout:budgetMultiple and rollout:budgetFloor: how a step's budget derives from its rehearsed time (lib/runbook/rehearsal.ts). */
export interface BudgetPolicy {
    /** rollout:budgetMultiple. */
    multiple: number;
    /** rollout:budgetFloor, in ms. */
    floorMs: number;
}

/** rollout:parityCutover parsed: a time (compared to a time column) or an id (compared to the primary key). */
export interface ParityCutover {
    kind: "time" | "id";
    /** As configured: an ISO-8601 time or a whole number. */
    value: string;
    /** rollout:parityCutoverColumn; unset: created_at for a time, the table's one-column primary key for an id. */
    column?: string;
}

const TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/;

/** The cut-over from config, or a problem naming the key; undefined when not set. */
export function parseParityCutover(value: string | undefined, column: string | undefined): { cutover?: ParityCutover; problem?: string } {
    if (!value) return column ? { problem: "rollout:parityCutoverColumn is set but rollout:parityCutover is not: set the time or id of the parity fix, or unset the column" } : {};
    if (column !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(column)) return { problem: `rollout:parityCutoverColumn must be a column name, got "${column}"` };
    if (/^\d+$/.test(value)) return { cutover: { kind: "id", value, column } };
    if (TIME.test(value) && !Number.isNaN(Date.parse(value))) return { cutover: { kind: "time", value, column } };
    return { problem: `rollout:parityCutover must be the time of the parity fix (ISO 8601, e.g. 2025-03-01T00:00:00Z) or the first id after it (a whole number), got "${value}"` };
}

/** Folders a dump must never go to: kernel file systems, where mkdir and writes misbehave. */
const PSEUDO_FILESYSTEMS = ["/proc", "/sys", "/dev"];

/**
 * The resolved backupDir's problems, as config errors; empty when it can be
 * used. Pure checks only (the tool also checks it is creatable and writable).
 */
export function backupDirProblems(dir: string): string[] {
    if (!path.isAbsolute(dir)) return [`rollout:backupDir must resolve to an absolute path, got "${dir}"`];
    const pseudo = PSEUDO_FILESYSTEMS.find((root) => dir === root || dir.startsWith(`${root}/`));
    if (pseudo) return [`rollout:backupDir is under ${pseudo}, a kernel file system where no dump can be kept: choose a folder on a disk, got "${dir}"`];
    return [];
}

/** A configured path (appDir, backupDir) for this checkout: "~" is the home, relative is from `baseDir`. */
export function resolveSetting(setting: string, baseDir: string, home = os.homedir()): string {
    return path.resolve(baseDir, expandHome(setting, home));
}
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export function expandHome(p: string, home = os.homedir()): string {
    if (p === "~") return home;
    if (p.startsWith("~/")) return path.join(home, p.slice(2));
    return p;
}

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
    "newColumns", "pauseWriters", "resumeWriters", "lockTimeout", "lockRetries", "lockRetryBudget", "stepTimeout", "resumeOnFailure", "paritySample", "parityCutover", "parityCutoverColumn", "rehearsal", "rehearsalSizeFactor", "budgetMultiple", "budgetFloor", "restoreJobs", "protect", "dbPasswordFile",
] as const;
