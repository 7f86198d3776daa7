import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it } from "vitest";
import { createRollout, DrillDatabase, DrillDatabaseArgs } from "../../components";
import { resolveStackConfig } from "../../lib/stackConfig";
import { registered, registrations, settle, valueOf } from "./helpers/mocks";
import { rerunsFor } from "../../lib/rolloutPhase";

const PASSWORD = "test-only-drill-pw";

function args(overrides: Partial<DrillDatabaseArgs> = {}): DrillDatabaseArgs {
    return {
        engine: "docker",
        port: 55432,
        password: pulumi.secret(PASSWORD),
        url: pulumi.secret(`postgresql+psycopg://protea:${PASSWORD}@127.0.0.1:55432/protea`),
        sourceDump: "/backups/pre-t16-20261125-120000.dump",
        sample: { datasets: 2, models: 51, embeddingRows: 0 },
        restoreJobs: 4,
        appDir: "/app",
        alembic: "alembic",
        seed: "python scripts/seed_sample.py",
        expectedHead: "9d2fb5a07e4c",
        stateDir: "/state/cluster",
        containerName: "protea-drill-postgres",
        ...overrides,
    };
}

async function build(a: DrillDatabaseArgs) {
    registrations.length = 0;
    const db = new DrillDatabase("drill", a);
    await valueOf(db.loadMillis);
    await settle();
    return db;
}

describe("the drill database, docker engine", () => {
    beforeEach(() => {
        registrations.length = 0;
    });

    it("pulls pgvector/pgvector:pg16 and runs it with a healthcheck, waiting until healthy, on 127.0.0.1 only", async () => {
        await build(args());
        expect(registered("drill-image").type).toBe("docker:index/remoteImage:RemoteImage");
        expect(registered("drill-image").inputs.name).toBe("pgvector/pgvector:pg16");
        const container = registered("drill-postgres");
        expect(container.type).toBe("docker:index/container:Container");
        expect(container.parent).toBe(registered("drill").urn);
        expect(container.inputs).toMatchObject({
            name: "protea-drill-postgres",
            wait: true,
            ports: [{ internal: 5432, external: 55432, ip: "127.0.0.1" }],
            healthcheck: { tests: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "protea", "-d", "protea"] },
            // The dump's directory, read-only: the restore reads the file itself.
            volumes: [{ hostPath: "/backups", containerPath: "/dumps", readOnly: true }],
        });
        expect(container.inputs.command).toEqual(expect.arrayContaining(["fsync=off", "synchronous_commit=off", "wal_level=minimal"]));
        expect(container.deleteBeforeReplace).toBe(true);
    });

    it("passes the password as a secret in the container's environment, never in a command", async () => {
        await build(args());
        const envs = JSON.stringify(registered("drill-postgres").inputs.envs);
        expect(envs).toContain(`POSTGRES_PASSWORD=${PASSWORD}`);
        expect(envs).toContain("1b47061264138c4ac30d75fd1eb44270"); // Pulumi's secret signature
        expect(registered("drill-load").inputs.create).not.toContain(PASSWORD);
    });

    it("restores inside the container from the mounted file, in parallel, after the container is healthy", async () => {
        await build(args());
        const load = registered("drill-load");
        expect(load.inputs.create).toContain("( docker exec protea-drill-postgres pg_restore -j 4 --no-owner -U protea -d protea /dumps/pre-t16-20261125-120000.dump );");
        expect(load.dependencies).toContain(registered("drill-postgres").urn);
    });

    it("generates the sample from the host when there is no source dump", async () => {
        await build(args({ sourceDump: undefined }));
        expect(registered("drill-postgres").inputs.volumes).toEqual([]);
        expect(registered("drill-load").inputs.create).toMatch(/protea-drill-db load-sample --app-dir \/app --alembic alembic --seed 'python scripts\/seed_sample\.py' --expected-head 9d2fb5a07e4c --datasets 2 --models 51 --embedding-rows 0/);
    });

    it("points the rollout's client tools into the container (docker-exec), as the runbook does", async () => {
        const config = resolveStackConfig((key) => ({ "drill:engine": "docker", "drill:password": PASSWORD })[key]);
        expect(config.rollout).toMatchObject({ pgAccess: "docker-exec", container: "protea-drill-postgres", dbUser: "protea", dbName: "protea" });
        createRollout(config.rollout, config.dbUrl, { stack: "rollout/drill", reruns: rerunsFor("pending") });
        await settle();
        expect(registered("backup-dump").inputs.create).toMatch(/backup --dir \S+ --label pre-t16 --access docker-exec --container protea-drill-postgres --db-user protea --db-name protea --timeout 4h$/);
    });
});

describe("the drill database, local engine", () => {
    it("starts a cluster whose delete stops it and removes its directory", async () => {
        await build(args({ engine: "local", sourceDump: undefined }));
        const cluster = registered("drill-cluster");
        expect(cluster.inputs.create).toMatch(/protea-drill-db start --state-dir \/state\/cluster --port 55432$/);
        expect(cluster.inputs.delete).toMatch(/protea-drill-db stop --state-dir \/state\/cluster$/);
        expect(JSON.stringify(cluster.inputs.environment)).toContain("DRILL_DB_PASSWORD");
        expect(registrations.some((r) => r.type.startsWith("docker:"))).toBe(false);
    });
});
