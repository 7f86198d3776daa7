import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { rolloutCommand } from "../lib/rolloutCli";
import { CommandEnvironment } from "./types";

export interface PreflightArgs {
    /** Application checkout where alembic runs. */
    appDir: string;
    /** Command that runs alembic in `appDir`, e.g. `poetry run alembic`. */
    alembic: string;
    /** Revision the database must be at (`alembic current`). */
    expectedHead: string;
    /** Revision the checkout's single head must be (the migration to apply). */
    targetRevision: string;
    /** Carries PROTEA_DB_URL. */
    environment: CommandEnvironment;
}

/**
 * Runbook pre-flight step 2 as a gate: the database answers, `alembic
 * current` is the expected head and the checkout's head is the target. A
 * mismatch fails the update before anything changes, naming both revisions.
 */
export class Preflight extends pulumi.ComponentResource {
    /** What the gate saw: server version, `alembic current`, `alembic heads` (JSON). */
    readonly report: pulumi.Output<string>;

    constructor(name: string, args: PreflightArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:Preflight", name, {}, opts);
        const gate = new command.local.Command(
            `${name}-gate`,
            {
                create: rolloutCommand(
                    "preflight",
                    "--app-dir", args.appDir,
                    "--alembic", args.alembic,
                    "--expected-head", args.expectedHead,
                    "--target-revision", args.targetRevision,
                ),
                // The gate guards the first change only: once the migration is
                // applied, a config edit must not re-run it against the new head.
                update: "true",
                environment: args.environment,
            },
            { parent: this },
        );
        // The gate prints only revisions and a version, never the URL.
        this.report = pulumi.unsecret(gate.stdout);
        this.registerOutputs({ report: this.report });
    }
}
