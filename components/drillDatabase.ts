import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type * as dockerTypes from "@pulumi/docker";
import { checkoutRelative, clusterDirSetting, DEFAULT_DRILL_IMAGE, resolveDrillPath, tablesSnapshotFile } from "../lib/config/drillConfig";
import type { DrillEngine, DrillSample } from "../lib/config/drillConfig";
import { projectCommand } from "../lib/runbook/rolloutCli";
import { commandLine, stepMillis, timed } from "../lib/process/shell";

/** Defined with the drill's config (lib/config/drillConfig.ts), which parses them. */
export type { DrillEngine, DrillSample };

/** Where the container reads the clone's password (POSTGRES_PASSWORD_FILE, the official postgres image's convention). */
export const CONTAINER_PASSWORD_FILE = "/run/secrets/drill-password";

export interface DrillDatabaseArgs {
    /** `local`: an initdb/pg_ctl cluster under `stateDir`; `docker`: a container of `image`. */
    engine: DrillEngine;
    /** Port on 127.0.0.1 the clone listens on. */
    port: number;
    /** Password of the `protea` role (secret). */
    password: pulumi.Input<string>;
    /** SQLAlchemy URL of the clone (secret), as the application gets it. */
    url: pulumi.Input<string>;
    /**
     * A `pg_dump -F c` of production to restore; when unset, `sample` is
     * generated. As configured: "~" or relative to the project root (an
     * absolute path inside the checkout is made relative again). Local engine:
     * the first drill from a dump keeps a pristine copy of the restored data
     * directory, keyed by the dump's SHA-256 (lib/drill/pristineCopy.ts); a later
     * drill from the same content starts from a copy of it instead of
     * restoring. The docker engine always restores.
     */
    sourceDump?: string;
    /** The sample to generate when there is no source dump. */
    sample: DrillSample;
    /** pg_restore -j. */
    restoreJobs: number;
    /**
     * For the sample: application checkout (relative to the project root, or
     * absolute inside the checkout, which is made relative again), its alembic
     * and seed commands, and the head to migrate to.
     */
    appDir: string;
    alembic: string;
    seed: string;
    expectedHead: string;
    /**
     * local: directory of the cluster (removed on delete), exactly there. Unset:
     * `.state/drill/<stack>/cluster`, or a private folder under /var/tmp when the
     * server's OS user cannot reach that (bin/drill-db.ts decides at run time).
     */
    stateDir?: string;
    /**
     * docker: the image, following the official postgres image's conventions
     * (POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE). Defaults to
     * pgvector/pgvector:pg16, as the runbook's drill; one built locally is used
     * as it is (never pulled).
     */
    image?: string;
    /** docker: the container's name. */
    containerName: string;
}

/**
 * The drill's throwaway database: created, loaded (a production dump restored
 * in parallel from a file, or a generated sample), measured and its tables
 * recorded; deleting it stops the server and removes its data.
 */
/** `--state-dir <as configured> [--relocatable]`: where the local engine's cluster is, for its commands. */
function localClusterArgs(args: DrillDatabaseArgs): string[] {
    const { setting, relocatable } = clusterDirSetting(pulumi.getStack(), args.stateDir && checkoutRelative(args.stateDir));
    return ["--state-dir", setting, ...(relocatable ? ["--relocatable"] : [])];
}

export class DrillDatabase extends pulumi.ComponentResource {
    /** Wall time of the restore (or sample generation), in milliseconds. */
    readonly loadMillis: pulumi.Output<number | undefined>;
    /** Name of the container (docker engine), for docker-exec access. */
    readonly containerName: string;

    constructor(name: string, args: DrillDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:drill:DrillDatabase", name, {}, opts);
        this.containerName = args.containerName;
        const server = args.engine === "docker" ? this.createContainer(name, args) : this.createLocalCluster(name, args);
        const load = new command.local.Command(
            `${name}-load`,
            { create: timed("load", this.loadCommand(args)), environment: pulumi.secret(pulumi.output(args.url).apply((url) => ({ PROTEA_DB_URL: url }))) },
            { parent: this, dependsOn: [server] },
        );
        this.loadMillis = pulumi.unsecret(load.stderr.apply((err) => stepMillis(err, "load")));
        this.recordTables(name, args, load);
        this.registerOutputs({ loadMillis: this.loadMillis });
    }

    /**
     * Each table's row count and checksum once loaded, in a file of the stack's
     * working folder (not the state): the rollout depends on this component, so
     * it is written before the rollout starts; the drill compares the restore
     * rehearsal's result with it.
     */
    private recordTables(name: string, args: DrillDatabaseArgs, load: pulumi.Resource): pulumi.Resource {
        const file = tablesSnapshotFile(pulumi.getStack());
        return new command.local.Command(
            `${name}-tables`,
            {
                create: projectCommand("drill-db.ts", "snapshot-tables", "--out", file),
                delete: projectCommand("drill-db.ts", "snapshot-tables", "--out", file, "--remove"),
                environment: pulumi.secret(pulumi.output(args.url).apply((url) => ({ PROTEA_DB_URL: url }))),
            },
            { parent: this, dependsOn: [load] },
        );
    }

    /**
     * Stored commands carry paths as configured, relative to the project root;
     * `protea-drill-db` resolves them against its own checkout when it runs, so
     * the state names no folder of this checkout.
     */
    private createLocalCluster(name: string, args: DrillDatabaseArgs): pulumi.Resource {
        const where = localClusterArgs(args);
        // From a dump: the cluster starts from a copy of the dump's pristine when an earlier drill kept one
        // (lib/drill/drillPristine.ts); otherwise (and for the sample) initdb.
        const start = args.sourceDump
            ? projectCommand("drill-db.ts", "start-from-dump", ...where, "--port", args.port, "--dump", checkoutRelative(args.sourceDump))
            : projectCommand("drill-db.ts", "start", ...where, "--port", args.port);
        return new command.local.Command(
            `${name}-cluster`,
            {
                create: start,
                delete: projectCommand("drill-db.ts", "stop", ...where),
                environment: pulumi.secret(pulumi.output(args.password).apply((password) => ({ DRILL_DB_PASSWORD: password }))),
            },
            { parent: this, deleteBeforeReplace: true },
        );
    }

    private createContainer(name: string, args: DrillDatabaseArgs): pulumi.Resource {
        // Loaded only for the docker engine: @pulumi/docker alone adds about 0.4 s to every program start.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const docker: typeof dockerTypes = require("@pulumi/docker");
        const image = new docker.RemoteImage(`${name}-image`, { name: args.image ?? DEFAULT_DRILL_IMAGE, keepLocally: true }, { parent: this });
        return new docker.Container(
            `${name}-postgres`,
            {
                image: image.imageId,
                name: args.containerName,
                // The password goes in as a file copied into the container before it starts:
                // an environment variable would show in `docker inspect`.
                envs: [`POSTGRES_PASSWORD_FILE=${CONTAINER_PASSWORD_FILE}`, "POSTGRES_USER=protea", "POSTGRES_DB=protea"],
                uploads: [{ file: CONTAINER_PASSWORD_FILE, content: pulumi.secret(args.password), permissions: "0400" }],
                // Flags only: the image's entrypoint starts postgres with them (the official one adds `postgres`).
                // A throwaway clone: durability off makes the restore about twice as fast.
                command: ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off", "-c", "wal_level=minimal", "-c", "max_wal_senders=0", "-c", "maintenance_work_mem=512MB"],
                ports: [{ internal: 5432, external: args.port, ip: "127.0.0.1" }],
                healthcheck: { tests: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "protea", "-d", "protea"], interval: "2s", timeout: "5s", retries: 60 },
                wait: true,
                waitTimeout: 180,
                volumes: args.sourceDump ? [{ hostPath: path.dirname(resolveDrillPath(args.sourceDump)), containerPath: "/dumps", readOnly: true }] : [],
            },
            // The provider returns the uploaded content as an output: the state keeps it encrypted.
            { parent: this, deleteBeforeReplace: true, additionalSecretOutputs: ["uploads"] },
        );
    }

    private loadCommand(args: DrillDatabaseArgs): string {
        if (args.sourceDump && args.engine === "docker") {
            // From a file inside the container, so -j can restore in parallel.
            const dumpInContainer = `/dumps/${path.basename(args.sourceDump)}`;
            return commandLine("docker", "exec", args.containerName, "pg_restore", "-j", args.restoreJobs, "--no-owner", "-U", "protea", "-d", "protea", dumpInContainer);
        }
        if (args.sourceDump) {
            // Nothing to load when the cluster started from the dump's pristine; otherwise restore-dump, then keep one.
            return projectCommand("drill-db.ts", "load-dump", ...localClusterArgs(args), "--dump", checkoutRelative(args.sourceDump), "--jobs", args.restoreJobs);
        }
        return projectCommand(
            "drill-db.ts",
            "load-sample",
            "--app-dir", checkoutRelative(args.appDir),
            "--alembic", args.alembic,
            "--seed", args.seed,
            "--expected-head", args.expectedHead,
            "--datasets", args.sample.datasets,
            "--models", args.sample.models,
            "--embedding-rows", args.sample.embeddingRows,
        );
    }
}
