import * as pulumi from "@pulumi/pulumi";
import type { PgAccess, RolloutConfig } from "../lib/config/config";
import { stepEnvironment } from "../lib/postgres/database";
import type { BudgetedStep } from "../lib/runbook/rehearsal";
import type { Rerun } from "../lib/runbook/rolloutPhase";

export type { Rerun };

/**
 * Environment for commands that reach the database: PROTEA_DB_URL (secret)
 * and anything else a step needs. Secrets travel only here, never in a
 * command string.
 */
export type CommandEnvironment = pulumi.Input<Record<string, pulumi.Input<string>>>;

/** What every database step gets: the URL, where its password is when it is not in the URL, and the application's variable. */
export function commandEnvironment(config: RolloutConfig, url: string): Record<string, string> {
    return stepEnvironment(config, url);
}

/** Where PostgreSQL's client tools run: inside `container` (docker-exec) as `dbUser` on `dbName`, or on the host (url). */
export interface ClientToolsPlacement {
    pgAccess: PgAccess;
    container: string;
    dbUser: string;
    dbName: string;
}

/** With rollout:rehearsal: where the drill's report is (as configured) and how budgets derive from it. */
export interface RehearsalBudget {
    setting: string;
    multiple: number;
    floorMs: number;
}

/** The tool's options that give a step its rehearsal budget (lib/runbook/rehearsal.ts); none without a rehearsal. */
export function budgetArgs(budget: RehearsalBudget | undefined, step: BudgetedStep): (string | number)[] {
    return budget ? ["--rehearsal", budget.setting, "--budget-step", step, "--budget-multiple", budget.multiple, "--budget-floor", `${budget.floorMs}ms`] : [];
}

/** Every input of a command resource, for a step that must not change once done. */
export const ALL_COMMAND_INPUTS = ["create", "update", "delete", "environment", "stdin", "triggers", "logging", "interpreter", "dir"];

/**
 * The inputs and options that make a step run again when the database needs
 * it (lib/runbook/rolloutPhase.ts): the token travels in stdin, which the tools
 * ignore; when it is kept, the state's value stands and nothing re-runs on its
 * account. `frozen` keeps every input once the step is done.
 */
export function rerunOn(rerun: Rerun, frozen = false): { stdin: string; ignoreChanges: string[] } {
    return { stdin: `rerun ${rerun.token}`, ignoreChanges: rerun.keep ? (frozen ? ALL_COMMAND_INPUTS : ["stdin"]) : [] };
}

/** Commands whose output may carry what a child printed: never stored or shown unmarked. */
export const SECRET_OUTPUTS = { additionalSecretOutputs: ["stdout", "stderr"] };

/** What a step passes to the steps after a pause, so a failure resumes the writers. */
export interface ResumeOnFailure {
    /** rollout:resumeWriters, when writers were paused (rollout:pauseWriters set). */
    resumeWriters?: string;
    /** rollout:resumeOnFailure. */
    resumeOnFailure: boolean;
}

export function resumeArgs(r: ResumeOnFailure): string[] {
    return r.resumeWriters ? ["--resume-writers", r.resumeWriters, "--resume-on-failure", String(r.resumeOnFailure)] : [];
}
