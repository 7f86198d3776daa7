/**
 * Runs the billing fixture's tools (alembic, the backfill, the seeder) with the
 * billing venv's Python and the database URL in BILLING_DATABASE_URL, never in argv.
 *
 * The billing app is the second, deliberately different alembic application
 * (test/fixtures/billing/): psycopg2 only (a `postgresql+psycopg://` URL fails
 * there with ModuleNotFoundError), its URL in BILLING_DATABASE_URL used exactly
 * as given, its version table `billing_alembic_version`, tables `invoice` and
 * `ledger_entry`, and a backfill that prints `<table> -> filled <n>, untouched <n>`.
 * Its venv is .state/venv-billing, built by scripts/setup-fixture.sh.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT, type FixtureRunOptions, type ProcessResult, type StackConfigValues, expectSuccess, fixtureStackConfig, runApplicationPython } from "./fixture";

export const BILLING_DIR = path.join(PROJECT_ROOT, "test/fixtures/billing");
export const BILLING_PYTHON = path.join(PROJECT_ROOT, ".state/venv-billing/bin/python");

/** The revision the runbook expects live, and the additive target revision. */
export const BILLING_EXPECTED_HEAD = "c0ffee000002";
export const BILLING_TARGET = "c0ffee000003";
/** The only variable the billing app reads its URL from. */
export const BILLING_URL_ENV = "BILLING_DATABASE_URL";
export const BILLING_VERSION_TABLE = "billing_alembic_version";

export const BILLING_NEW_COLUMNS = [
    { table: "invoice", column: "digest_v2", index: "ix_invoice_digest_v2", legacyColumn: "legacy_digest" },
    { table: "ledger_entry", column: "digest_v2", index: "ix_ledger_entry_digest_v2", legacyColumn: "legacy_digest" },
];

/** Quotes one word for POSIX sh: single quotes, `'\''` for a quote inside; plain when nothing needs it. */
export function shQuote(word: string): string {
    return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Throws, naming the setup script, when the billing venv has not been built. */
function requireBillingPython(): string {
    if (!fs.existsSync(BILLING_PYTHON)) {
        throw new Error(`The billing fixture venv is missing (${BILLING_PYTHON}): run 'bash scripts/setup-fixture.sh' first.`);
    }
    return BILLING_PYTHON;
}

/** Runs the billing venv's python with `args` in BILLING_DIR, the URL in BILLING_DATABASE_URL exactly as given. Resolves whatever the exit code. */
export function billingRun(args: readonly string[], options: FixtureRunOptions = {}): Promise<ProcessResult> {
    return runApplicationPython(requireBillingPython(), BILLING_DIR, BILLING_URL_ENV, args, options);
}

export function billingAlembic(dbUrl: string | undefined, ...args: string[]): Promise<ProcessResult> {
    return billingRun(["-m", "alembic", ...args], { dbUrl });
}

/** Adds `invoices` invoices and `entriesPerInvoice` ledger entries for each; fails on a non-zero exit. */
export async function billingSeed(dbUrl: string, invoices: number, entriesPerInvoice: number): Promise<ProcessResult> {
    const result = await billingRun(
        ["scripts/seed.py", "--invoices", String(invoices), "--entries-per-invoice", String(entriesPerInvoice)],
        { dbUrl },
    );
    return expectSuccess(result, "billing seed");
}

/**
 * The stack config for the billing app: `fixtureStackConfig` (url access, no
 * protect) with the billing venv's alembic and backfill, the billing revisions,
 * version table and columns, the URL handed over in BILLING_DATABASE_URL, the
 * dump into `backupDir`. `dbUrl` is used as given (a psycopg2 URL).
 * `overrides` are `rollout:*` keys without the namespace.
 */
export function billingStackConfig(dbUrl: string, backupDir: string, overrides: Record<string, string> = {}): StackConfigValues {
    const python = shQuote(BILLING_PYTHON);
    return fixtureStackConfig(dbUrl, backupDir, {
        appDir: BILLING_DIR,
        alembic: `${python} -m alembic`,
        backfill: `${python} scripts/backfill_digest_v2.py`,
        expectedHead: BILLING_EXPECTED_HEAD,
        targetRevision: BILLING_TARGET,
        alembicVersionTable: BILLING_VERSION_TABLE,
        backupLabel: "pre-billing",
        newColumns: JSON.stringify(BILLING_NEW_COLUMNS),
        dbUrlEnv: BILLING_URL_ENV,
        ...overrides,
    });
}
