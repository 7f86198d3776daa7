import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it } from "vitest";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { createRollout, DrillDatabase, DrillDatabaseArgs } from "../../components";
import { CONTAINER_PASSWORD_FILE } from "../../components/drillDatabase";
import { parseDrillConfig, workingSettings, withoutStackSecrets } from "../../lib/config/drillConfig";
import { compareTableData, containersNamed, dockerCloneRemoved, progressLine, TableChecksum } from "../../lib/drill/drillReport";
import { PROJECT_ROOT } from "../../lib/process/projectRoot";
import { RolloutConfigError } from "../../lib/config/config";
import { clusterLocation, relocatedClusterDir } from "../../lib/postgres/cluster/clusterLayout";
import { resolveStackConfig } from "../../lib/config/stackConfig";
import { registered, registrations, settle, valueOf } from "./helpers/mocks";
import { rerunsFor } from "../../lib/runbook/rolloutPhase";

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

    it("gives the password as a file (POSTGRES_PASSWORD_FILE), never in an env var `docker inspect` shows, a command, or the state in plain text", async () => {
        await build(args());
        const container = registered("drill-postgres");
        const envs: string[] = container.inputs.envs;
        expect(envs).toContain(`POSTGRES_PASSWORD_FILE=${CONTAINER_PASSWORD_FILE}`);
        for (const env of envs) {
            expect(typeof env, "every env var is plain text: none is (or holds) a secret").toBe("string");
            expect(env).not.toContain(PASSWORD);
            expect(env).not.toMatch(/^POSTGRES_PASSWORD=/);
        }
        // Copied into the container before it starts; a secret input (so encrypted in the state) and a secret output.
        expect(container.inputs.uploads).toEqual({
            "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", // Pulumi's secret signature
            value: [{ file: CONTAINER_PASSWORD_FILE, content: PASSWORD, permissions: "0400" }],
        });
        expect(container.additionalSecretOutputs).toContain("uploads");
        expect(JSON.stringify(container.inputs.command)).not.toContain(PASSWORD);
        expect(registered("drill-load").inputs.create).not.toContain(PASSWORD);
    });

    it("runs the image drill:image names (a locally built pgvector image), from the config to the RemoteImage", async () => {
        const config = parseDrillConfig({ engine: "docker", password: PASSWORD, port: "40123", image: "protea/pgvector:pg16-local" }, "/checkout");
        expect(config.image).toBe("protea/pgvector:pg16-local");
        expect(parseDrillConfig({ engine: "docker", password: PASSWORD, port: "40123" }, "/checkout").image).toBe("pgvector/pgvector:pg16");
        await build(args({ image: config.image }));
        expect(registered("drill-image").inputs).toMatchObject({ name: "protea/pgvector:pg16-local", keepLocally: true });
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
        expect(registered("backup-dump").inputs.create).toMatch(/backup --dir \S+ --label pre-t16 --compression 1 --access docker-exec --container protea-drill-postgres --db-user protea --db-name protea --timeout 4h$/);
    });
});

describe("the drill database's tables, recorded before the rollout", () => {
    it("writes each table's count and checksum to the working folder once loaded, and removes it on delete", async () => {
        await build(args({ engine: "local", sourceDump: undefined }));
        const tables = registered("drill-tables");
        // The mocks' stack is "prod".
        expect(tables.inputs.create).toMatch(/drill-db(\.js)? snapshot-tables --out \.state\/drill\/prod\/tables-before-rollout\.json$/);
        expect(tables.inputs.delete).toMatch(/drill-db(\.js)? snapshot-tables --out \.state\/drill\/prod\/tables-before-rollout\.json --remove$/);
        expect(tables.dependencies).toContain(registered("drill-load").urn);
        expect(JSON.stringify(tables.inputs.environment)).toContain("1b47061264138c4ac30d75fd1eb44270"); // the URL, a secret
        expect(tables.inputs.create).not.toContain(PASSWORD);
    });

    it("is done before the rollout's first step starts, on either engine", async () => {
        for (const engine of ["local", "docker"] as const) {
            registrations.length = 0;
            const db = new DrillDatabase("drill", args({ engine }));
            const config = resolveStackConfig((key) => ({ "drill:engine": engine, "drill:password": PASSWORD, "drill:port": "55432" })[key]);
            createRollout(config.rollout, config.dbUrl, { stack: "rollout/drill", reruns: rerunsFor("pending") }, { dependsOn: [db] });
            await settle();
            // The rollout's first component waits for every child of the clone, the tables step included.
            expect(registered("preflight").dependencies, engine).toContain(registered("drill-tables").urn);
        }
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
        // A dump: the cluster starts from its pristine copy when one was kept, the load restores (and keeps one) otherwise.
        expect(registered("drill-cluster").inputs.create).toMatch(/start-from-dump --state-dir \.state\/elsewhere --port 55432 --dump dumps\/pre-t16\.dump$/);
        expect(registered("drill-load").inputs.create).toMatch(/load-dump --state-dir \.state\/elsewhere --dump dumps\/pre-t16\.dump --jobs 4/);

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

describe("the drill's teardown check, docker engine", () => {
    it("asks docker for containers of exactly that name, running or stopped", async () => {
        const calls: string[][] = [];
        const left = await containersNamed("protea-drill.postgres", async (program, argv) => {
            calls.push([program, ...argv]);
            return { code: 0, stdout: "e1c442ea11b7 Exited (0) 3 seconds ago\n", stderr: "" };
        });
        expect(calls).toEqual([["docker", "ps", "-a", "--filter", "name=^/protea-drill\\.postgres$", "--format", "{{.ID}} {{.Status}}"]]);
        expect(left).toEqual(["e1c442ea11b7 Exited (0) 3 seconds ago"]);
        await expect(containersNamed("x", async () => ({ code: 1, stdout: "", stderr: "Cannot connect to the Docker daemon" }))).rejects.toThrow(/docker ps failed \(exit 1\): Cannot connect/);
    });

    it("passes only when no such container is left and nothing listens on the clone's port, naming what is left", () => {
        const clone = { containerName: "protea-drill-postgres", port: 55432 };
        expect(dockerCloneRemoved({ ...clone, left: [], listening: false })).toEqual({
            name: "clone removed",
            pass: true,
            detail: "no container protea-drill-postgres; nothing listens on 127.0.0.1:55432",
        });
        const stopped = dockerCloneRemoved({ ...clone, left: ["e1c442ea11b7 Exited (0) 3 seconds ago"], listening: false });
        expect(stopped.pass).toBe(false);
        expect(stopped.detail).toContain("container protea-drill-postgres still exists (e1c442ea11b7 Exited (0) 3 seconds ago)");
        const port = dockerCloneRemoved({ ...clone, left: [], listening: true });
        expect(port.pass).toBe(false);
        expect(port.detail).toContain("something still listens on 127.0.0.1:55432");
    });
});

describe("the drill's data check after the restore", () => {
    const before: TableChecksum[] = [
        { table: "alembic_version", rows: 1, checksum: "a".repeat(32) },
        { table: "dataset", rows: 2, checksum: "b".repeat(32) },
        { table: "reranker_model", rows: 51, checksum: "c".repeat(32) },
    ];

    it("passes when every table has its rows back: same count, same checksum", () => {
        const check = compareTableData("after restore", before, before.map((t) => ({ ...t })));
        expect(check).toMatchObject({ name: "after restore: every table's rows as before the rollout", pass: true });
        expect(check.detail).toBe("3 tables, 54 rows, each table's count and checksum as before: alembic_version 1, dataset 2, reranker_model 51");
    });

    it("fails naming the table whose count or rows differ, and tables missing or new", () => {
        const after = [
            { table: "alembic_version", rows: 1, checksum: "a".repeat(32) },
            { table: "dataset", rows: 2, checksum: "d".repeat(32) },
            { table: "extra", rows: 3, checksum: "e".repeat(32) },
        ];
        const check = compareTableData("after restore", before, after);
        expect(check.pass).toBe(false);
        expect(check.detail).toBe(
            "dataset has other rows (checksum dddddddddddd…, bbbbbbbbbbbb… before; 2 rows); reranker_model is missing (51 rows before); extra was not there before (3 rows)",
        );
        const fewer = compareTableData("after restore", before, before.map((t) => (t.table === "reranker_model" ? { ...t, rows: 50 } : t)));
        expect(fewer).toMatchObject({ pass: false, detail: "reranker_model has 50 rows, 51 before" });
    });
});

describe("the drill's progress lines", () => {
    const step = (kind: "resourcePreEvent" | "resOutputsEvent", op: string, type: string, name: string, inputs: Record<string, unknown> = {}) =>
        ({
            sequence: 1,
            timestamp: 0,
            [kind]: { metadata: { op, type, urn: `urn:pulumi:drill::rollout::protea:drill:DrillDatabase$${type}::${name}`, new: { type, urn: "", id: "", inputs, outputs: {} } } },
        }) as unknown as EngineEvent;

    it("names the docker image and container when they start being created or deleted, and when they are done", () => {
        expect(progressLine(step("resourcePreEvent", "create", "docker:index/remoteImage:RemoteImage", "drill-image", { name: "pgvector/pgvector:pg16" }))).toBe("create drill-image: docker image pgvector/pgvector:pg16 …");
        expect(progressLine(step("resourcePreEvent", "create", "docker:index/container:Container", "drill-postgres", { name: "protea-drill-postgres" }))).toBe("create drill-postgres: docker container protea-drill-postgres …");
        expect(progressLine(step("resourcePreEvent", "delete", "docker:index/container:Container", "drill-postgres", { name: "protea-drill-postgres" }))).toBe("delete drill-postgres: docker container protea-drill-postgres …");
        expect(progressLine(step("resOutputsEvent", "create", "docker:index/container:Container", "drill-postgres"))).toBe("create drill-postgres");
        expect(progressLine(step("resOutputsEvent", "delete", "docker:index/remoteImage:RemoteImage", "drill-image"))).toBe("delete drill-image");
    });

    it("keeps one line per finished command, and says nothing of an unchanged container starting or of other resources", () => {
        expect(progressLine(step("resOutputsEvent", "create", "command:local:Command", "drill-load"))).toBe("create drill-load");
        expect(progressLine(step("resourcePreEvent", "create", "command:local:Command", "drill-load"))).toBeUndefined();
        expect(progressLine(step("resourcePreEvent", "same", "docker:index/container:Container", "drill-postgres"))).toBeUndefined();
        expect(progressLine(step("resOutputsEvent", "create", "protea:drill:DrillDatabase", "drill"))).toBeUndefined();
    });
});
