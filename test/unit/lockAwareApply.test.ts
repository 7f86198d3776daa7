import { describe, expect, it } from "vitest";
import { applyInShortTries, backoffMs, gaveUpOnLock, LockBlocker, LockBudgetSpent } from "../../lib/runbook/lockAwareApply";

const reader = (ageSeconds: number): LockBlocker => ({
    pid: 4242, user: "analyst", application: "psql", state: "idle in transaction", ageSeconds,
    query: "SELECT count(*) FROM reranker_model", locks: "holds AccessShareLock on reranker_model", why: "has locks on the tables",
});
const LOCK_TIMEOUT = { code: 1, tail: "sqlalchemy.exc.OperationalError: (psycopg.errors.LockNotAvailable) canceling statement due to lock timeout" };

function harness(blockersSeen: LockBlocker[][], outcomes: { code: number; tail: string }[]) {
    const log: string[] = [];
    let tries = 0;
    let looks = 0;
    const slept: number[] = [];
    return {
        log,
        slept,
        tries: () => tries,
        run: (policy = { lockTimeoutMs: 1000, retries: 10, budgetMs: 60_000 }) =>
            applyInShortTries({
                policy,
                what: "alembic upgrade a3c1d8e2f4b6",
                log: (line) => log.push(line),
                blockers: async () => blockersSeen[Math.min(looks++, blockersSeen.length - 1)],
                attempt: async () => outcomes[Math.min(tries++, outcomes.length - 1)],
                sleep: async (ms) => void slept.push(ms),
                random: () => 0.5,
            }),
    };
}

describe("the lock-aware apply", () => {
    it("does not try while a session has held a lock on the tables longer than one try may wait, and lands once it is gone", async () => {
        const h = harness([[reader(30)], [reader(31)], []], [{ code: 0, tail: "upgraded" }]);
        const { tries } = await h.run();
        expect(tries).toBe(1);
        expect(h.tries()).toBe(1);
        expect(h.log.filter((l) => l.includes("not trying yet, it would queue writers behind pid 4242"))).toHaveLength(2);
        expect(h.slept).toEqual([backoffMs(0, () => 0.5), backoffMs(1, () => 0.5)]);
    });

    it("tries again after a try that gave up on its lock_timeout, naming who was in the way", async () => {
        const h = harness([[], [reader(0)], []], [LOCK_TIMEOUT, { code: 0, tail: "upgraded" }]);
        expect((await h.run()).tries).toBe(2);
        expect(h.log[0]).toContain("try 1 gave up on its lock_timeout of 1000 ms; its transaction rolled back; in the way: pid 4242 (user analyst");
    });

    it("fails, naming the blocker and the last try's error, when the retries are spent", async () => {
        const h = harness([[reader(0)]], [LOCK_TIMEOUT]);
        const failure = await h.run({ lockTimeoutMs: 1000, retries: 2, budgetMs: 60_000 }).then(() => "", (e: Error) => e);
        expect(failure).toBeInstanceOf(LockBudgetSpent);
        expect(h.tries()).toBe(3);
        const message = (failure as Error).message;
        expect(message).toContain("alembic upgrade a3c1d8e2f4b6 could not get its locks: 3 tries with lock_timeout 1000 ms within 60 s");
        expect(message).toContain('blocked by pid 4242 (user analyst, application "psql", idle in transaction for 0 s; holds AccessShareLock on reranker_model): SELECT count(*) FROM reranker_model');
        expect(message).toContain("the last try said: sqlalchemy.exc.OperationalError: (psycopg.errors.LockNotAvailable) canceling statement due to lock timeout");
        expect(message).toContain("nothing changed");
    });

    it("fails when the time budget is spent, even with retries left, without trying behind a blocker", async () => {
        const h = harness([[reader(600)]], [{ code: 0, tail: "" }]);
        const failure = await h.run({ lockTimeoutMs: 1000, retries: 10, budgetMs: 200 }).then(() => "", (e: Error) => e.message);
        expect(h.tries()).toBe(0);
        expect(failure).toContain("0 tries with lock_timeout 1000 ms");
    });

    it("returns any other failure at once, untried again", async () => {
        const h = harness([[]], [{ code: 1, tail: "psycopg.errors.DuplicateColumn: column already exists" }]);
        expect((await h.run()).outcome.code).toBe(1);
        expect(h.tries()).toBe(1);
    });

    it("recognises a lock timeout in PostgreSQL's, psycopg's and SQLSTATE's words; backoff doubles with jitter up to 8 s", () => {
        expect(gaveUpOnLock("ERROR:  canceling statement due to lock timeout")).toBe(true);
        expect(gaveUpOnLock("psycopg2.errors.LockNotAvailable")).toBe(true);
        expect(gaveUpOnLock("SQLSTATE 55P03")).toBe(true);
        expect(gaveUpOnLock("deadlock detected")).toBe(false);
        expect([0, 1, 2, 5].map((n) => backoffMs(n, () => 1))).toEqual([500, 1000, 2000, 8000]);
        expect(backoffMs(3, () => 0)).toBe(2000);
    });
});
