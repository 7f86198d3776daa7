/**
 * One rollout at a time per database. Two PostgreSQL advisory locks, each
 * held on its own connection for as long as its holder lives (a killed holder
 * releases it with its connection):
 *
 * - the run lock: held by `pulumi up` (the program), the rollback and the
 *   restore for their whole run, so a second rollout from any stack fails at
 *   once, before it changes anything;
 * - the step lock: held by each step that writes (upgrade, backfill,
 *   downgrade, restore) for as long as its child runs.
 *
 * A step inside a run of its own stack finds the run lock held by that run
 * and goes on; a step with no run around it (a plain `pulumi destroy`) takes
 * the run lock itself. Holders are named by `application_name`.
 */
import { Client } from "pg";
import { connect } from "../postgres/database";
import type { LibpqSettings } from "../config/databaseUrl";

/** `pg_try_advisory_lock(int4, int4)` keys: "PROT" and a lock number. */
const NAMESPACE = 0x50524f54;
const RUN_LOCK = 1;
const STEP_LOCK = 2;
const APP_PREFIX = "protea-rollout";

export interface LockHolder {
    pid: number;
    user: string;
    applicationName: string;
    since: string;
    clientAddr: string | null;
}

export class RolloutBusyError extends Error {
    constructor(readonly holder: LockHolder | undefined, what: string) {
        super(
            holder
                ? `another rollout holds this database: ${describeHolder(holder)}; ${what} changed nothing. Wait for it to finish; if its run was interrupted, \`npm run recover -- --stack <its stack>\``
                : `another rollout holds this database (its session is not visible to this role); ${what} changed nothing`,
        );
        this.name = "RolloutBusyError";
    }
}

export function describeHolder(h: LockHolder): string {
    return `pid ${h.pid}, user ${h.user}, application "${h.applicationName}"${h.clientAddr ? ` from ${h.clientAddr}` : ""}, since ${h.since}`;
}

/** The application_name a holder uses: who holds the lock, for which stack. */
export function holderName(stack: string, role: string): string {
    return `${APP_PREFIX} ${stack} ${role}`.slice(0, 63);
}

/** The stack a holder's application_name names, if it is one of ours. */
export function stackOfHolder(applicationName: string): string | undefined {
    const match = new RegExp(`^${APP_PREFIX} (\\S+) `).exec(applicationName);
    return match?.[1];
}

async function holderOf(client: Client, lock: number): Promise<LockHolder | undefined> {
    const result = await client.query(
        `SELECT a.pid, a.usename, a.application_name, a.backend_start, host(a.client_addr) AS client_addr
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [NAMESPACE, lock],
    );
    const row = result.rows[0];
    if (!row) return undefined;
    return {
        pid: row.pid,
        user: row.usename ?? "?",
        applicationName: row.application_name ?? "",
        since: row.backend_start ? new Date(row.backend_start).toISOString() : "?",
        clientAddr: row.client_addr ?? null,
    };
}

async function tryLock(client: Client, lock: number): Promise<boolean> {
    return (await client.query("SELECT pg_try_advisory_lock($1::int4, $2::int4) AS ok", [NAMESPACE, lock])).rows[0].ok === true;
}

export interface HeldLock {
    /** The session holding the lock (for queries that need not be separate). */
    client: Client;
    release(): Promise<void>;
}

async function hold(settings: LibpqSettings, name: string, lock: number, what: string): Promise<HeldLock> {
    const client = await connect(settings, name);
    try {
        if (!(await tryLock(client, lock))) throw new RolloutBusyError(await holderOf(client, lock), what);
    } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
    }
    return { client, release: () => client.end().catch(() => undefined) };
}

/** The run lock, for a whole `up`, rollback or restore of `stack`. */
export function holdRunLock(settings: LibpqSettings, stack: string, role: string): Promise<HeldLock> {
    return hold(settings, holderName(stack, role), RUN_LOCK, role);
}

/**
 * The locks a writing step holds while its child runs: the step lock always;
 * the run lock too, unless a run of the same stack already holds it.
 */
export async function holdStepLocks(settings: LibpqSettings, stack: string, step: string): Promise<HeldLock> {
    const name = holderName(stack, step);
    const step_ = await hold(settings, name, STEP_LOCK, step);
    try {
        if (await tryLock(step_.client, RUN_LOCK)) return step_;
        const runHolder = await holderOf(step_.client, RUN_LOCK);
        if (runHolder && stackOfHolder(runHolder.applicationName) === stack) return step_;
        throw new RolloutBusyError(runHolder, step);
    } catch (err) {
        await step_.release();
        throw err;
    }
}

/** Who holds the run or the step lock now (for the preview and `recover`). */
export async function lockHolders(client: Client): Promise<LockHolder[]> {
    const holders = [await holderOf(client, RUN_LOCK), await holderOf(client, STEP_LOCK)];
    return holders.filter((h): h is LockHolder => h !== undefined);
}
