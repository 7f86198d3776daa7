/**
 * The gates read `alembic current` from alembic's version table
 * (lib/runbook/alembic.ts currentRevisions) instead of starting alembic: on a real
 * database the two must agree, at base, at the expected head and at the
 * target, and a version table named in config is read where it lives.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentRevisions } from "../../lib/runbook/alembic";
import { withDb } from "./helpers/db";
import { useTemporaryPostgresCluster } from "./helpers/temporaryCluster";
import { alembic, alembicCurrent, EXPECTED_HEAD, expectSuccess, T16_REVISION } from "./helpers/fixture";

const cluster = useTemporaryPostgresCluster({ beforeAll, afterAll });

describe("alembic current, read from the version table", () => {
    it("agrees with `alembic current` at base, at the expected head and at the target", async () => {
        const url = cluster().sqlalchemyUrl;
        expect(await withDb(cluster().clientConfig, (c) => currentRevisions(c, "alembic_version"))).toEqual([]);
        expect(await alembicCurrent(url)).toBeUndefined();
        for (const revision of [EXPECTED_HEAD, T16_REVISION]) {
            expectSuccess(await alembic(url, "upgrade", revision), `alembic upgrade ${revision}`);
            expect(await withDb(cluster().clientConfig, (c) => currentRevisions(c, "alembic_version"))).toEqual([(await alembicCurrent(url))!]);
            expect(await withDb(cluster().clientConfig, (c) => currentRevisions(c, "alembic_version"))).toEqual([revision]);
        }
    }, 120_000);

    it("reads a version table in another schema, with its name's case, and none where there is no table", async () => {
        await withDb(cluster().clientConfig, async (c) => {
            await c.query(`CREATE SCHEMA deploy; CREATE TABLE deploy."Versions" (version_num varchar(32) PRIMARY KEY); INSERT INTO deploy."Versions" VALUES ('b2'), ('a1')`);
            expect(await currentRevisions(c, "deploy.Versions")).toEqual(["a1", "b2"]);
            expect(await currentRevisions(c, "deploy.missing_versions")).toEqual([]);
            expect(await currentRevisions(c, "missing_schema.versions")).toEqual([]);
            await expect(currentRevisions(c, "x; DROP TABLE y")).rejects.toThrow(/rollout:alembicVersionTable must be a table or schema.table name/);
        });
    });
});
