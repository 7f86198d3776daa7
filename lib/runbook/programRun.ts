/**
 * What the program does against the database before it declares a resource:
 * read where the rollout stands, and on `up` hold the database's rollout lock
 * until the program ends with the run.
 */
import * as pulumi from "@pulumi/pulumi";
import type { RolloutConfig } from "../config/config";
import { containerProblem } from "../postgres/clientTools";
import { connect } from "../postgres/database";
import { readRehearsal } from "./rehearsal";
import { describeHolder, holdRunLock, lockHolders, RolloutBusyError, stackOfHolder } from "./rolloutLock";
import { observePhase, PhaseReruns, RolloutPhase, rerunsFor } from "./rolloutPhase";

/**
 * A failure of the program as Pulumi should print it: the message alone.
 * The SDK formats an uncaught error with util.inspect, which on Node 20
 * spins for a minute and more on a stack frame under node_modules/@pulumi/
 * (it marks node_modules in colour); without a stack it prints the message.
 * Errors the program does not raise itself: lib/process/plainErrors.ts.
 */
export function programFailure(message: string): pulumi.RunError {
    const error = new pulumi.RunError(message);
    error.stack = "";
    return error;
}

export async function openRolloutRun(config: RolloutConfig, run: { stack: string; dryRun: boolean; databaseMayNotExistYet: boolean }): Promise<PhaseReruns> {
    // A rehearsal that cannot be read stops the run before anything acts.
    if (config.rehearsal) {
        try {
            readRehearsal(config.rehearsal.file);
        } catch (err) {
            throw programFailure((err as Error).message);
        }
    }
    let phase: RolloutPhase;
    try {
        const client = await connect(config.database, "protea-rollout-observe");
        try {
            phase = await observePhase(client, config.newColumns);
            if (run.dryRun) {
                // The dry run says what the up would meet: another rollout holding this database.
                for (const holder of await lockHolders(client)) {
                    if (stackOfHolder(holder.applicationName) !== run.stack) {
                        pulumi.log.warn(`dry run: another rollout holds this database: ${describeHolder(holder)}; an up now would stop before changing anything`);
                    }
                }
            }
        } finally {
            await client.end();
        }
    } catch (err) {
        // Preview reports an unreachable database through its probes; a drill's clone may not exist yet.
        if (!run.dryRun && !run.databaseMayNotExistYet) {
            // With docker-exec, the container is the likelier reason: say so here too, not only in the preview.
            const container = config.pgAccess === "docker-exec" ? await containerProblem(config.container).catch(() => undefined) : undefined;
            throw programFailure(container ? `${(err as Error).message}\n${container}` : (err as Error).message);
        }
        phase = "unreachable";
    }
    if (!run.dryRun && phase !== "unreachable") {
        try {
            const lock = await holdRunLock(config.database, run.stack, "up");
            // Held until this process ends with the run; it must not keep the process alive itself.
            (lock.client as unknown as { connection: { stream: { unref(): void } } }).connection.stream.unref();
        } catch (err) {
            if (err instanceof RolloutBusyError) throw programFailure(err.message);
            throw err;
        }
    }
    pulumi.log.info(`database: ${describePhase(phase, run.databaseMayNotExistYet)}`);
    return rerunsFor(phase);
}

function describePhase(phase: RolloutPhase, clone: boolean): string {
    switch (phase) {
        case "pending":
            return "the migration is not applied: the gate, a fresh backup and the migration run";
        case "partial":
            return "some of the new columns or indexes exist, not all: the gates will stop and name them";
        case "incomplete":
            return "the migration is applied, some rows are not backfilled yet: the backfill and verification run";
        case "complete":
            return "the migration is applied and every row backfilled";
        case "unreachable":
            return clone ? "does not answer yet (a drill's clone is created by this run)" : "does not answer (see the dry run's database line)";
    }
}
