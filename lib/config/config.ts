/**
 * The rollout's configuration (RolloutConfig, its defaults, the T1.6 values of the
 * runbook) and the checks of single values; parseRolloutConfig.ts reads it from raw strings.
 */
import * as os from "node:os";
import * as path from "node:path";
import type { LibpqSettings } from "./databaseUrl";

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
    /** rollout:dbUrlEnv: the environment variable the application reads its URL from. */
    dbUrlEnv: string;
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

export function expandHome(p: string, home = os.homedir()): string {
    if (p === "~") return home;
    if (p.startsWith("~/")) return path.join(home, p.slice(2));
    return p;
}
