/**
 * `npm run rollback -- --stack <name>`: the rollout's rollback. Finds the
 * stack's Migration and runs `pulumi destroy --target <its URN>
 * --target-dependents`: verification and backfill leave the state, the
 * migration downgrades to the expected head and checks the columns are gone.
 * The backup stays (on disk and in the state).
 */
import { parseFlags } from "../lib/cliFlags";
import { openStack, urnsOfType } from "../lib/stack";

const USAGE = `usage: npm run rollback -- --stack <name> [--yes] [--preview]

  --stack    the stack to roll back (prod, drill, …)
  --yes      do not ask; required when there is no terminal to ask on
  --preview  show what the rollback would do, change nothing`;

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
    const flags = parseFlags(process.argv.slice(2), { stack: "value", yes: "flag", preview: "flag" }, USAGE);
    if (typeof flags.stack !== "string") throw new Error(`--stack is required\n\n${USAGE}`);
    const stack = await openStack(flags.stack);
    const [migrationUrn, ...others] = await urnsOfType(stack, "protea:rollout:Migration");
    if (!migrationUrn) {
        process.stdout.write(`stack ${flags.stack} holds no migration: nothing to roll back\n`);
        return;
    }
    if (others.length > 0) throw new Error(`stack ${flags.stack} holds ${others.length + 1} migrations; roll back one with \`npm run pulumi -- destroy --target <urn> --target-dependents\``);
    const options = { target: [migrationUrn], targetDependents: true, onOutput: (out: string) => process.stdout.write(out) };

    if (flags.preview) {
        await stack.previewDestroy(options);
        return;
    }
    if (!flags.yes && !(await confirm(`Roll back ${migrationUrn} on stack ${flags.stack} (alembic downgrade)? Type "yes": `))) {
        throw new Error("not confirmed; nothing changed (pass --yes to run without a prompt)");
    }
    const result = await stack.destroy(options);
    process.stdout.write(`rollback ${result.summary.result}: the migration is downgraded and verified; the backup is kept\n`);
}

main().catch((err: Error) => {
    process.stderr.write(`rollback: ${err.message}\n`);
    process.exit(1);
});
