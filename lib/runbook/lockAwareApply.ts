/**
 * A lock-aware apply: DDL that needs ACCESS EXCLUSIVE never sits in the lock
 * queue for long, because every writer queues behind it there. Before each
 * try the sessions that hold or wait for locks on the migration's tables are
 * read from pg_stat_activity and pg_locks; a try runs only when none of them
 * has held its lock longer than one try's lock_timeout, each try is a clean
 * transaction (alembic's) with a short lock_timeout, and between tries the
 * apply backs off with jitter. It fails, naming the blockers, only when its
 * retries or its time budget are spent.
 */
import type { Client } from "pg";

/** A session that would hold the migration up, or that an operator should know of before it runs. */
export interface LockBlocker {
    pid: number;
    user: string;
    application: string;
    /** pg_stat_activity.state: active, idle in transaction, … */
    state: string;
    /** Seconds since its transaction (or, outside one, its query) began. */
    ageSeconds: number;
    /** The head of its current or last query. */
    query: string;
    /** Its locks on the migration's tables, e.g. "holds AccessShareLock on reranker_model"; empty when it has none. */
    locks: string;
    /** Why it is named: it has locks on the tables, it is pg_dump, idle in a transaction, or in a long one. */
    why: string;
}

/**
 * Sessions of this database (other than the rollout's own) that hold or wait
 * for a lock on `tables`, run pg_dump, sit idle in a transaction, or have
 * been in a transaction for `longSeconds` or more. Read-only.
 */
export async function lockBlockers(client: Client, tables: string[], longSeconds: number): Promise<LockBlocker[]> {
    const result = await client.query(
        `WITH target AS (
              SELECT to_regclass(CASE WHEN strpos(t, '.') > 0 THEN t ELSE quote_ident(current_schema()) || '.' || quote_ident(t) END) AS oid, t AS name
                FROM unnest($1::text[]) t
         ), on_target AS (
              SELECT l.pid, string_agg(DISTINCT CASE WHEN l.granted THEN 'holds ' ELSE 'waits for ' END || l.mode || ' on ' || target.name, ', ') AS locks
                FROM pg_locks l JOIN target ON l.relation = target.oid
               GROUP BY l.pid
         )
         SELECT a.pid, coalesce(a.usename, '') AS usename, coalesce(a.application_name, '') AS application, coalesce(a.state, '') AS state,
                extract(epoch FROM now() - coalesce(a.xact_start, a.query_start, a.backend_start))::float8 AS age,
                left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 100) AS query,
                coalesce(t.locks, '') AS locks,
                concat_ws(', ',
                    CASE WHEN t.locks IS NOT NULL THEN 'has locks on the tables' END,
                    CASE WHEN a.application_name = 'pg_dump' THEN 'pg_dump is running' END,
                    CASE WHEN a.state LIKE 'idle in transaction%' THEN 'idle in a transaction' END,
                    CASE WHEN now() - a.xact_start >= make_interval(secs => $2) THEN 'long transaction' END) AS why
           FROM pg_stat_activity a LEFT JOIN on_target t ON t.pid = a.pid
          WHERE a.pid <> pg_backend_pid() AND a.datname = current_database() AND a.backend_type = 'client backend'
            AND coalesce(a.application_name, '') NOT LIKE 'protea-rollout %'
            AND (t.locks IS NOT NULL OR a.application_name = 'pg_dump' OR a.state LIKE 'idle in transaction%' OR now() - a.xact_start >= make_interval(secs => $2))
          ORDER BY age DESC`,
        [tables, longSeconds],
    );
    return result.rows.map((r) => ({
        pid: r.pid,
        user: r.usename,
        application: r.application,
        state: r.state,
        ageSeconds: Math.round(Number(r.age) * 10) / 10,
        query: r.query,
        locks: r.locks,
        why: r.why,
    }));
}

/** One line per blocker: pid, user, application, state, age, its locks, the head of its query. */
export function describeBlocker(b: LockBlocker): string {
    const app = b.application ? `application "${b.application}"` : "no application_name";
    return `pid ${b.pid} (user ${b.user}, ${app}, ${b.state || "state unknown"} for ${b.ageSeconds} s${b.locks ? `; ${b.locks}` : `; ${b.why}`}): ${b.query || "(no query)"}`;
}

/** A blocker a try would queue behind: it has held a lock on the tables longer than one try may wait. */
export const wouldBlock = (b: LockBlocker, lockTimeoutMs: number) => b.locks.includes("holds ") && b.ageSeconds * 1000 >= lockTimeoutMs;

export interface LockRetryPolicy {
    /** lock_timeout of each try. */
    lockTimeoutMs: number;
    /** Tries after the first. */
    retries: number;
    /** Wall time for all tries and the waits between them. */
    budgetMs: number;
}

export interface TryOutcome {
    code: number;
    /** The end of the try's output (scrubbed), for the failure. */
    tail: string;
}

/** What PostgreSQL and its drivers say when a statement gave up on lock_timeout (SQLSTATE 55P03). */
export const gaveUpOnLock = (output: string) => /LockNotAvailable|lock timeout|55P03/.test(output);

export class LockBudgetSpent extends Error {}

/** Backoff before the next look: doubling from 500 ms up to 8 s, with jitter (50–100 %), so two waiting rollouts do not retry in step. */
export function backoffMs(round: number, random: () => number = Math.random): number {
    return Math.round(Math.min(500 * 2 ** round, 8000) * (0.5 + random() / 2));
}

/**
 * Runs `attempt` (one transaction, with `policy.lockTimeoutMs`) until it
 * succeeds, fails for another reason than its lock timeout, or the policy is
 * spent; a try is skipped while a session that would block it is still there.
 */
export async function applyInShortTries<T extends TryOutcome>(options: {
    policy: LockRetryPolicy;
    attempt: () => Promise<T>;
    blockers: () => Promise<LockBlocker[]>;
    log: (line: string) => void;
    what: string;
    sleep?: (ms: number) => Promise<void>;
    random?: () => number;
}): Promise<{ outcome: T; tries: number }> {
    const { policy, log, what } = options;
    const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const deadline = Date.now() + policy.budgetMs;
    let tries = 0;
    let last: T | undefined;
    let seen: LockBlocker[] = [];
    for (let round = 0; ; round++) {
        seen = await options.blockers();
        const blocking = seen.filter((b) => wouldBlock(b, policy.lockTimeoutMs));
        if (blocking.length === 0) {
            tries++;
            last = await options.attempt();
            if (last.code === 0 || !gaveUpOnLock(last.tail)) return { outcome: last, tries };
            seen = await options.blockers();
            log(`${what}: try ${tries} gave up on its lock_timeout of ${policy.lockTimeoutMs} ms; its transaction rolled back${seen.length ? `; in the way: ${seen.map(describeBlocker).join("; ")}` : ""}`);
        } else {
            log(`${what}: not trying yet, it would queue writers behind ${blocking.map(describeBlocker).join("; ")}`);
        }
        const wait = backoffMs(round, options.random);
        if (tries > policy.retries || Date.now() + wait >= deadline) break;
        log(`${what}: next look in ${(wait / 1000).toFixed(1)} s (try ${tries} of at most ${policy.retries + 1}, ${Math.max(0, Math.round((deadline - Date.now()) / 1000))} s of the budget left)`);
        await sleep(wait);
    }
    const blockedBy = seen.length > 0 ? `blocked by ${seen.map(describeBlocker).join("; ")}` : "no blocker visible to this role any more";
    const lastError = last ? `; the last try said: ${last.tail.trim().split("\n").filter(gaveUpOnLock).pop() ?? "lock timeout"}` : "";
    throw new LockBudgetSpent(
        `${what} could not get its locks: ${tries} ${tries === 1 ? "try" : "tries"} with lock_timeout ${policy.lockTimeoutMs} ms within ${Math.round(policy.budgetMs / 1000)} s ` +
            `(rollout:lockTimeout, rollout:lockRetries, rollout:lockRetryBudget); each try's transaction rolled back, nothing changed; ${blockedBy}${lastError}. ` +
            `End or wait for those sessions, then run \`pulumi up\` again`,
    );
}
