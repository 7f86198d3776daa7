import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { NewColumn } from "../lib/config";
import { rolloutCommand } from "../lib/rolloutCli";
import { andThen, inDirectory, quote, stepMillis, timed } from "../lib/shell";
import { CommandEnvironment } from "./types";

export interface MigrationArgs {
    /** Application checkout where alembic runs. */
    appDir: string;
    /** Command that runs alembic in `appDir`. */
    alembic: string;
    /** Revision a rollback downgrades to. */
    expectedHead: string;
    /** Revision the upgrade goes to. */
    targetRevision: string;
    /** Columns and indexes the upgrade must create and the downgrade must drop. */
    newColumns: NewColumn[];
    /** PostgreSQL lock_timeout for the migration's session, e.g. "5s". */
    lockTimeout: string;
    /** Carries PROTEA_DB_URL. */
    environment: CommandEnvironment;
}

/**
 * The additive migration. Create upgrades to the target revision and checks
 * every column and index landed; delete (the rollback, `pulumi destroy`)
 * downgrades to the expected head and checks they are gone. A replacement
 * always downgrades before it upgrades again.
 */
export class Migration extends pulumi.ComponentResource {
    /** Changes whenever the migration is (re)applied; dependents re-run on it. */
    readonly appliedId: pulumi.Output<string>;
    /** Wall time of `alembic upgrade`, in milliseconds. */
    readonly upgradeMillis: pulumi.Output<number | undefined>;

    constructor(name: string, args: MigrationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Migration", name, {}, opts);
        const columns = JSON.stringify(args.newColumns);
        const upgrade = new command.local.Command(
            `${name}-upgrade`,
            {
                create: andThen(
                    timed("upgrade", inDirectory(args.appDir, `${args.alembic} upgrade ${quote(args.targetRevision)}`)),
                    rolloutCommand("verify-schema", "--expect", "present", "--columns", columns),
                ),
                delete: andThen(
                    timed("downgrade", inDirectory(args.appDir, `${args.alembic} downgrade ${quote(args.expectedHead)}`)),
                    rolloutCommand("verify-schema", "--expect", "absent", "--columns", columns),
                ),
                environment: pulumi.output(args.environment).apply((env) => ({
                    ...env,
                    // A DDL statement that cannot get its lock in time fails
                    // instead of queueing every writer behind it.
                    PGOPTIONS: `-c lock_timeout=${args.lockTimeout}`,
                })),
            },
            { parent: this, deleteBeforeReplace: true },
        );
        this.appliedId = upgrade.id;
        // A number parsed from stderr cannot carry the password.
        this.upgradeMillis = pulumi.unsecret(upgrade.stderr.apply((err) => stepMillis(err, "upgrade")));
        this.registerOutputs({ appliedId: this.appliedId, upgradeMillis: this.upgradeMillis });
    }
}
