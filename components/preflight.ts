import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { clientToolArgs, rolloutCommand, versionTableArgs } from "../lib/runbook/rolloutCli";
import { ClientToolsPlacement, CommandEnvironment, Rerun, rerunOn } from "./types";

export interface PreflightArgs {
    /** Application checkout where alembic runs, as configured (resolved by the tool at run time). */
    appDir: string;
    /** Command that runs alembic in `appDir`, e.g. `poetry run alembic`. */
    alembic: string;
    /** Revision the database must be at (`alembic current`). */
    expectedHead: string;
    /** Revision the checkout's heads must include (the migration to apply). */
    targetRevision: string;
    /** alembic's version table, where the gate reads `alembic current`. */
    versionTable: string;
    /** Folder for the dump, as configured: checked writable with room before anything changes. */
    backupDir: string;
    /** Where the client tools run: checked to answer and not be older than the server. */
    clientTools: ClientToolsPlacement;
    /** Runs the gate again whenever the migration is not in the database. */
    rerun: Rerun;
    /** Carries PROTEA_DB_URL. */
    environment: CommandEnvironment;
}

/**
 * Runbook pre-flight step 2 as a gate, before the backup and the pause: the
 * database answers, `alembic current` is the expected head and the
 * checkout's heads include the target, and the backup folder can take the
 * dump. A mismatch fails the update before anything changes, naming both
 * revisions; so does a client tool that cannot reach the server or is older
 * than it (the backup would fail mid-run). It runs again before every (re)apply; the migration repeats the
 * revision check in its own invocation, immediately before the upgrade.
 */
export class Preflight extends pulumi.ComponentResource {
    /** What the gate saw: server version, `alembic current`, `alembic heads` (JSON). */
    readonly report: pulumi.Output<string>;

    constructor(name: string, args: PreflightArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Preflight", name, {}, opts);
        const { stdin, ignoreChanges } = rerunOn(args.rerun, true);
        const gate = new command.local.Command(
            `${name}-gate`,
            {
                create: rolloutCommand(
                    "preflight",
                    "--app-dir", args.appDir,
                    "--alembic", args.alembic,
                    "--expected-head", args.expectedHead,
                    "--target-revision", args.targetRevision,
                    ...versionTableArgs(args.versionTable),
                    "--backup-dir", args.backupDir,
                    ...clientToolArgs(args.clientTools),
                ),
                environment: args.environment,
                stdin,
            },
            { parent: this, ignoreChanges },
        );
        // The gate prints only revisions and a version, never the URL.
        this.report = pulumi.unsecret(gate.stdout);
        this.registerOutputs({ report: this.report });
    }
}
