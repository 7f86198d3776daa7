import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { BackupResult } from "../lib/backup";
import type { PgAccess } from "../lib/config";
import { parseRolloutResult, rolloutCommand } from "../lib/rolloutCli";
import { CommandEnvironment } from "./types";

export interface BackupArgs {
    /** Directory the dump is written to (created 0700 when missing). */
    backupDir: string;
    /** File name prefix: `<label>-<UTC timestamp>.dump`. Defaults to "pre-t16" in config. */
    label: string;
    /** Where pg_dump runs: inside `container` (docker-exec) or on the host (url). */
    pgAccess: PgAccess;
    /** For docker-exec: the database container. */
    container: string;
    /** For docker-exec: the role pg_dump connects as. */
    dbUser: string;
    /** For docker-exec: the database to dump. */
    dbName: string;
    /** Carries PROTEA_DB_URL (url access derives libpq settings from it). */
    environment: CommandEnvironment;
}

/**
 * Runbook pre-flight step 1: a fresh, verified `pg_dump -F c`. Deleting this
 * resource never deletes the dump (retainOnDelete), and the dump's path, size
 * and SHA-256 stay in the stack's outputs for the restore.
 */
export class Backup extends pulumi.ComponentResource {
    readonly path: pulumi.Output<string>;
    readonly sizeBytes: pulumi.Output<number>;
    readonly sha256: pulumi.Output<string>;
    /** Wall time of pg_dump and its verification, in milliseconds. */
    readonly millis: pulumi.Output<number>;

    constructor(name: string, args: BackupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Backup", name, {}, opts);
        const dump = new command.local.Command(
            `${name}-dump`,
            {
                create: rolloutCommand(
                    "backup",
                    "--dir", args.backupDir,
                    "--label", args.label,
                    "--access", args.pgAccess,
                    "--container", args.container,
                    "--db-user", args.dbUser,
                    "--db-name", args.dbName,
                ),
                environment: args.environment,
            },
            { parent: this, retainOnDelete: true },
        );
        // The backup command prints the dump's facts only, never the URL.
        const result = pulumi.unsecret(dump.stdout).apply((out) => parseRolloutResult<BackupResult>(out));
        this.path = result.path;
        this.sizeBytes = result.sizeBytes;
        this.sha256 = result.sha256;
        this.millis = result.apply((r) => Math.round(r.seconds * 1000));
        this.registerOutputs({ path: this.path, sizeBytes: this.sizeBytes, sha256: this.sha256, millis: this.millis });
    }
}
