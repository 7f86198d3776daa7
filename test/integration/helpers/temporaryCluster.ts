/**
 * A throwaway PostgreSQL cluster (lib/postgres/cluster/cluster.ts) for one test
 * file: started before its tests, stopped and removed after them.
 */
import { startPostgresCluster, type PostgresCluster, type PostgresClusterOptions } from "../../../lib/postgres/cluster/cluster";

/** The two vitest hooks the helpers need: the calling file's `beforeAll` and `afterAll`. */
export interface SuiteHooks {
    beforeAll(fn: () => unknown, timeout?: number): void;
    afterAll(fn: () => unknown, timeout?: number): void;
}

/**
 * Starts a cluster in `beforeAll` and stops and removes it in `afterAll`, so it
 * goes away even when a test fails; the process-exit handlers and the watchdog
 * cover a worker that dies. Returns an accessor for the running cluster.
 *
 * @example
 * const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll });
 * it("connects", async () => { const { clientConfig } = cluster(); … });
 */
export function useTemporaryPostgresCluster(
    hooks: SuiteHooks,
    options: PostgresClusterOptions = {},
    timeoutMs = 180_000,
): () => PostgresCluster {
    let cluster: PostgresCluster | undefined;
    hooks.beforeAll(async () => {
        cluster = await startPostgresCluster(options);
    }, timeoutMs);
    hooks.afterAll(async () => {
        await cluster?.stop();
    }, timeoutMs);
    return () => {
        if (!cluster) throw new Error("the PostgreSQL cluster is not running (did beforeAll fail?)");
        return cluster;
    };
}
