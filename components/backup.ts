import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { BackupResult, EarlierBackup } from "../lib/runbook/backup";
import { clientToolArgs, parseRolloutResult, rolloutCommand } from "../lib/runbook/rolloutCli";
import { budgetArgs, ClientToolsPlacement, CommandEnvironment, RehearsalBudget, Rerun, rerunOn } from "./types";

/** Where pg_dump runs: the ClientToolsPlacement fields. */
export interface BackupArgs extends ClientToolsPlacement {
    /** Directory the dump is written to (created 0700 when missing), as configured. */
    backupDir: string;
    /** File name prefix: `<label>-<UTC timestamp>.dump`. Defaults to "pre-t16" in config. */
    label: string;
    /** rollout:backupCompression: gzip level of `pg_dump -F c -Z N`; always in the stored command, so it is the same on every run. */
    compression: number;
    /** rollout:stepTimeout: pg_dump is stopped past it. */
    timeout: string;
    /** Takes a fresh dump whenever the migration is not in the database (before every (re)apply). */
    rerun: Rerun;
    /** With rollout:rehearsal: pg_dump stops past its budget. */
    budget?: RehearsalBudget;
    /** Carries PROTEA_DB_URL (url access derives libpq settings from it). */
    environment: CommandEnvironment;
}

/**
 * Runbook pre-flight step 1: a fresh, verified `pg_dump -F c` before every
 * (re)apply. No destroy deletes a dump (retainOnDelete, and no delete
 * command); each new dump lists the earlier ones, so they stay on disk and
 * in the stack's outputs. The dump's path, size and SHA-256 are outputs for
 * the restore, and the SHA-256 is also kept beside the dump.
 */
export class Backup extends pulumi.ComponentResource {
    readonly path: pulumi.Output<string>;
    readonly sizeBytes: pulumi.Output<number>;
    readonly sha256: pulumi.Output<string>;
    /** Dumps taken before earlier applies, newest first. */
    readonly earlier: pulumi.Output<EarlierBackup[]>;
    /** Wall time of pg_dump and its verification, in milliseconds. */
    readonly millis: pulumi.Output<number>;

    constructor(name: string, args: BackupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Backup", name, {}, opts);
        const { stdin, ignoreChanges } = rerunOn(args.rerun, true);
        const dump = new command.local.Command(
            `${name}-dump`,
            {
                create: rolloutCommand(
                    "backup",
                    "--dir", args.backupDir,
                    "--label", args.label,
                    "--compression", String(args.compression),
                    ...clientToolArgs(args),
                    "--timeout", args.timeout,
                    ...budgetArgs(args.budget, "backup"),
                ),
                environment: args.environment,
                stdin,
            },
            { parent: this, retainOnDelete: true, ignoreChanges },
        );
        // The backup command prints the dump's facts only, never the URL.
        const result = pulumi.unsecret(dump.stdout).apply((out) => parseRolloutResult<BackupResult>(out));
        this.path = result.path;
        this.sizeBytes = result.sizeBytes;
        this.sha256 = result.sha256;
        this.earlier = result.apply((r) => r.earlier ?? []);
        this.millis = result.apply((r) => Math.round(r.seconds * 1000));
        this.registerOutputs({ path: this.path, sizeBytes: this.sizeBytes, sha256: this.sha256, earlier: this.earlier, millis: this.millis });
    }
}
