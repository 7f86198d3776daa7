/**
 * The whole prod-shaped rollout again, with the fixture's backfill printing
 * exactly what PROTEA's own script prints (`canonical schema_sha_v2 = …`,
 * `db = <URL with the password>`, `[table] …` lines, one per row in a dry run,
 * and one `summary:` line): how an application prints is its own business.
 */
import { afterAll } from "vitest";
import "./rollout.test";

// Set once the suite is registered and before any test runs: the backfill reads it when it starts.
process.env.PROTEA_BACKFILL_OUTPUT = "protea";
afterAll(() => {
    delete process.env.PROTEA_BACKFILL_OUTPUT;
});
