import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { BudgetedStep } from "../lib/runbook/rehearsal";
import { parseRolloutResult, rolloutCommand } from "../lib/runbook/rolloutCli";
import { CommandEnvironment, RehearsalBudget } from "./types";

export interface RehearsalReportArgs {
    /** rollout:rehearsal and the budgets' policy. */
    budget: RehearsalBudget;
    /** Beside the dumps (rollout:backupDir, as configured). */
    dir: string;
    label: string;
    /** Production's step times from this run, in milliseconds. */
    stepMillis: pulumi.Input<Partial<Record<BudgetedStep, pulumi.Input<number | undefined>>>>;
    /** Carries PROTEA_DB_URL (production's size scales the budgets). */
    environment: CommandEnvironment;
}

/**
 * After the rollout: the change ticket's table, rehearsal and production side
 * by side, step by step, with each step's budget (`<label>-vs-rehearsal-<UTC>.md`
 * and `.json` beside the dumps). Written again whenever a step ran again.
 */
export class RehearsalReport extends pulumi.ComponentResource {
    readonly path: pulumi.Output<string>;

    constructor(name: string, args: RehearsalReportArgs, opts?: pulumi.ComponentResourceOptions) {
        super("protea:rollout:RehearsalReport", name, {}, opts);
        const write = new command.local.Command(
            `${name}-write`,
            {
                create: rolloutCommand(
                    "rehearsal-report",
                    "--rehearsal", args.budget.setting,
                    "--budget-multiple", args.budget.multiple,
                    "--budget-floor", `${args.budget.floorMs}ms`,
                    "--dir", args.dir,
                    "--label", args.label,
                ),
                // The times travel in stdin: new times, a new report.
                stdin: pulumi.output(args.stepMillis).apply((millis) => JSON.stringify(millis)),
                environment: args.environment,
            },
            { parent: this },
        );
        // The tool prints the report's path only.
        this.path = pulumi.unsecret(write.stdout).apply((out) => parseRolloutResult<{ path: string }>(out).path);
        this.registerOutputs({ path: this.path });
    }
}
