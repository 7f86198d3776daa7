/**
 * `npm run rollback -- --stack <name>`: the rollout's rollback. Holds the
 * database's rollout lock, finds the stack's Migration and runs `pulumi
 * destroy --target <its URN> --target-dependents`: verification and backfill
 * leave the state, the migration checks the database is at the target,
 * downgrades to the expected head and checks the columns are gone. The
 * backups stay (on disk and in the state). The stack's outputs then say so.
 * Its stored commands call the project's tools by name, so any checkout of
 * the project sharing the backend can run it.
 */
import { cliSpec, readCli } from "../lib/process/cliOptions";
import { installOutputScrubber } from "../lib/process/scrub";
import { passwordForms } from "../lib/postgres/database";
import { profiled, profileEvent } from "../lib/process/profileLog";
import { holdRunLock } from "../lib/runbook/rolloutLock";
import { keepWritersResumed, openStack, recordOutcome, stackConfig, stackId, urnsIn } from "../lib/runbook/stack";

const CLI = cliSpec({
    usage: "npm run rollback --",
    description: `Rolls the stack's migration back: under the database's rollout lock, pulumi
destroy --target <its Migration> --target-dependents downgrades alembic to the
expected head and checks the new columns are gone. The backups stay.`,
    options: {
        stack: { type: "string", value: "NAME", required: true, description: "the stack to roll back (prod, drill, …)" },
        yes: { type: "boolean", description: "do not ask; required when there is no terminal to ask on" },
        preview: { type: "boolean", description: "show what the rollback would do, change nothing" },
    },
});

async function confirm(question: string): Promise<boolean> {
    if (!process.stdin.isTTY) return false;
    const readline = await import("node:readline/promises");
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
    try {
        return (await rl.question(question)).trim().toLowerCase() === "yes";
    } finally {
        rl.close();
    }
}

async function main(): Promise<void> {
    const flags = readCli(process.argv.slice(2), CLI);
    profileEvent("rollback: node start and module load", performance.now());
    const stack = openStack(flags.stack);
    // Two engine calls at once: the state's export and the config.
    const configRead = profiled("rollback: read the stack's config", () => stackConfig(stack));
    configRead.catch(() => undefined); // awaited below, unless nothing is rolled back
    const before = await profiled("rollback: find the migration (stack export)", () => stack.exportStack());
    const [migrationUrn, ...others] = urnsIn(before.deployment, "protea:rollout:Migration");
    if (!migrationUrn) {
        process.stdout.write(`stack ${flags.stack} holds no migration: nothing to roll back\n`);
        return;
    }
    if (others.length > 0) throw new Error(`stack ${flags.stack} holds ${others.length + 1} migrations; roll back one with \`npm run pulumi -- destroy --target <urn> --target-dependents\``);
    const options = { target: [migrationUrn], targetDependents: true };

    if (flags.preview) {
        await stack.destroy({ ...options, previewOnly: true });
        return;
    }
    if (!flags.yes && !(await confirm(`Roll back ${migrationUrn} on stack ${flags.stack} (alembic downgrade)? Type "yes": `))) {
        throw new Error("not confirmed; nothing changed (pass --yes to run without a prompt)");
    }
    const { rollout: config } = await configRead;
    installOutputScrubber(passwordForms(config));
    // No other rollout may start while this one downgrades; its steps see this lock as their own run's.
    const lock = await profiled("rollback: take the rollout lock", async () => holdRunLock(config.database, await stackId(stack), "rollback"));
    try {
        await keepWritersResumed(stack, before.deployment);
        await profiled("rollback: pulumi destroy --target", () => stack.destroy(options));
        await profiled("rollback: record the outcome (export + import)", () => recordOutcome(stack, { migration: `rolled back at ${new Date().toISOString()}: alembic at ${config.expectedHead}, the new columns and indexes are gone` }));
        process.stdout.write(`rollback succeeded: the migration is downgraded and verified; the backups are kept\n`);
    } finally {
        await lock.release();
    }
}

installOutputScrubber();
main().catch((err: Error) => {
    process.stderr.write(`rollback: ${err.message}\n`);
    process.exit(1);
});
