import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it } from "vitest";
import { createRollout, DrillDatabase, DrillDatabaseArgs } from "../../components";
import { parseDrillConfig, workingSettings, withoutStackSecrets } from "../../lib/drillConfig";
import { PROJECT_ROOT } from "../../lib/projectRoot";
import { RolloutConfigError } from "../../lib/config";
import { clusterLocation, relocatedClusterDir } from "../../lib/postgresCluster";
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
        expect(registered("drill-load").inputs.create).toMatch(/drill-db(\.js)? load-sample --app-dir \/app --alembic alembic --seed 'python scripts\/seed_sample\.py' --expected-head 9d2fb5a07e4c --datasets 2 --models 51 --embedding-rows 0/);
    });

    it("points the rollout's client tools into the container (docker-exec), as the runbook does", async () => {
        const config = resolveStackConfig((key) => ({ "drill:engine": "docker", "drill:password": PASSWORD, "drill:port": "55432" })[key]);
        expect(config.rollout).toMatchObject({ pgAccess: "docker-exec", container: "protea-drill-postgres", dbUser: "protea", dbName: "protea" });
        createRollout(config.rollout, config.dbUrl, { stack: "rollout/drill", reruns: rerunsFor("pending") });
        await settle();
        expect(registered("backup-dump").inputs.create).toMatch(/backup --dir \S+ --label pre-t16 --access docker-exec --container protea-drill-postgres --db-user protea --db-name protea --timeout 4h$/);
    });
});

describe("the drill database, local engine", () => {
    it("starts a cluster whose delete stops it and removes its directory: by default .state/drill/<stack>/cluster, which may move", async () => {
        await build(args({ engine: "local", sourceDump: undefined, stateDir: undefined }));
        const cluster = registered("drill-cluster");
        // The mocks' stack is "prod".
        expect(cluster.inputs.create).toMatch(/drill-db(\.js)? start --state-dir \.state\/drill\/prod\/cluster --relocatable --port 55432$/);
        expect(cluster.inputs.delete).toMatch(/drill-db(\.js)? stop --state-dir \.state\/drill\/prod\/cluster --relocatable$/);
        expect(JSON.stringify(cluster.inputs.environment)).toContain("DRILL_DB_PASSWORD");
        expect(registrations.some((r) => r.type.startsWith("docker:"))).toBe(false);
    });

    it("keeps an explicit drill:stateDir exactly there (no --relocatable)", async () => {
        await build(args({ engine: "local", sourceDump: undefined, stateDir: "/srv/drill/cluster" }));
        expect(registered("drill-cluster").inputs.create).toMatch(/start --state-dir \/srv\/drill\/cluster --port 55432$/);
        expect(registered("drill-cluster").inputs.delete).toMatch(/stop --state-dir \/srv\/drill\/cluster$/);
    });

    it("stores paths of the checkout relative to the project root, never absolute", async () => {
        await build(args({
            engine: "local",
            sourceDump: path.join(PROJECT_ROOT, "dumps/pre-t16.dump"),
            stateDir: path.join(PROJECT_ROOT, ".state/elsewhere"),
            appDir: path.join(PROJECT_ROOT, "test/fixtures/protea"),
        }));
        const commands = ["drill-cluster", "drill-load"].flatMap((name) => [registered(name).inputs.create, registered(name).inputs.delete ?? ""]);
        for (const command of commands) expect(command).not.toContain(PROJECT_ROOT);
        expect(registered("drill-cluster").inputs.create).toContain("--state-dir .state/elsewhere --port");
        expect(registered("drill-load").inputs.create).toMatch(/restore-dump --dump dumps\/pre-t16\.dump --jobs 4/);

        await build(args({ engine: "local", sourceDump: undefined, appDir: path.join(PROJECT_ROOT, "test/fixtures/protea") }));
        expect(registered("drill-load").inputs.create).toContain("load-sample --app-dir test/fixtures/protea ");
        expect(registered("drill-load").inputs.create).not.toContain(PROJECT_ROOT);
    });

    it("mounts a relative source dump's folder, resolved, into the docker clone", async () => {
        await build(args({ sourceDump: "dumps/pre-t16.dump" }));
        expect(registered("drill-postgres").inputs.volumes).toEqual([{ hostPath: path.join(PROJECT_ROOT, "dumps"), containerPath: "/dumps", readOnly: true }]);
    });
});

describe("the drill's config", () => {
    const raw = { engine: "local", password: PASSWORD, port: "40123" };

    it("keeps paths as configured and resolves them separately; stateDir unset means the default", () => {
        const config = parseDrillConfig({ ...raw, sourceDump: "dumps/x.dump" }, "/checkout");
        expect(config).toMatchObject({ port: 40123, sourceDump: "dumps/x.dump", sourceDumpPath: "/checkout/dumps/x.dump", stateDir: undefined });
    });

    it("needs drill:port, naming how it gets one", () => {
        expect(() => parseDrillConfig({ engine: "local", password: PASSWORD }, "/checkout")).toThrow(RolloutConfigError);
        expect(() => parseDrillConfig({ engine: "local", password: PASSWORD }, "/checkout")).toThrow(/drill:port is not set: `npm run drill`/);
    });

    const template = { config: { "drill:engine": "local", "drill:datasets": "2", "rollout:backupDir": ".state/drill/backups" } };
    const previous = {
        encryptionSalt: "v1:salt",
        config: { "drill:engine": "docker", "drill:datasets": "9", "drill:sourceDump": "/d.dump", "drill:port": "40123", "drill:password": { secure: "v1:pw" }, "other:secret": { secure: "v1:x" } },
    };

    it("starts each drill from the template, keeping only the previous copy's salt, password and picked port", () => {
        expect(workingSettings(template, previous)).toEqual({
            encryptionSalt: "v1:salt",
            config: { ...template.config, "drill:port": "40123", "drill:password": { secure: "v1:pw" } },
        });
    });

    it("lets a port set in the template win, applies this drill's flags, and unsets a key given empty", () => {
        const withPort = { config: { ...template.config, "drill:port": "6000", "drill:sourceDump": "/t.dump" } };
        const settings = workingSettings(withPort, previous, { "drill:engine": "docker", "drill:sourceDump": "" });
        expect(settings.config).toMatchObject({ "drill:port": "6000", "drill:engine": "docker" });
        expect(settings.config).not.toHaveProperty("drill:sourceDump");
    });

    it("never takes a salt or secret from a template, and drops them for a stack that is gone", () => {
        const polluted = { encryptionSalt: "v1:old", config: { ...template.config, "drill:password": { secure: "v1:old" } } };
        expect(workingSettings(polluted, undefined)).toEqual({ config: template.config });
        expect(withoutStackSecrets(workingSettings(template, previous))).toEqual({ config: { ...template.config, "drill:port": "40123" } });
    });
});

describe("where the local clone's cluster lives", () => {
    it("an explicit directory stays as given", () => {
        expect(clusterLocation("/srv/drill/cluster", { relocatable: false })).toEqual({ dir: "/srv/drill/cluster", preferred: "/srv/drill/cluster", relocated: false });
    });

    it("the stand-in for an unreachable default is private to its checkout and stack, and always the same", () => {
        const a = relocatedClusterDir("/root/a/protea/.state/drill/drill/cluster", "protea-drill-", "/var/tmp");
        expect(a).toMatch(/^\/var\/tmp\/protea-drill-[0-9a-f]{16}$/);
        expect(relocatedClusterDir("/root/a/protea/.state/drill/drill/cluster", "protea-drill-", "/var/tmp")).toBe(a);
        expect(relocatedClusterDir("/root/b/protea/.state/drill/drill/cluster", "protea-drill-", "/var/tmp")).not.toBe(a);
        expect(relocatedClusterDir("/root/a/protea/.state/drill/other/cluster", "protea-drill-", "/var/tmp")).not.toBe(a);
    });
});
