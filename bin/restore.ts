/**
 * `npm run restore -- --stack <name> --confirm <database>`: the runbook's
 * fallback when the rollback itself fails. Drops schema public, restores the
 * recorded pre-flight dump (or --dump FILE), stamps the expected head, checks
 * the result, and removes the migration and its dependents from the stack's
 * state, since the database no longer has them.
 */
import { execFileSync } from "node:child_process";
import { restoreFromDump } from "../lib/restore";
import { parseFlags } from "../lib/cliFlags";
import { openStack, stackConfig, urnsOfType } from "../lib/stack";

const USAGE = `usage: npm run restore -- --stack <name> --confirm <database name> [--dump FILE]

Drops schema public of the stack's database and restores it from a dump.
  --stack    the stack whose database to restore
  --confirm  the database's name, typed out: this DROPS SCHEMA public CASCADE
  --dump     the dump to restore (default: the stack's recorded backup, output backupPath)`;

async function main(): Promise<void> {
    const flags = parseFlags(process.argv.slice(2), { stack: "value", confirm: "value", dump: "value" }, USAGE);
    if (typeof flags.stack !== "string") throw new Error(`--stack is required\n\n${USAGE}`);
    const stack = await openStack(flags.stack);
    const { rollout: config } = await stackConfig(stack);
    const databaseName = config.pgAccess === "docker-exec" ? config.dbName : config.database.database;
    if (flags.confirm !== databaseName) {
        throw new Error(`restoring drops schema public of database "${databaseName}": pass --confirm ${databaseName} to go on; nothing changed`);
    }
    const dump = typeof flags.dump === "string" ? flags.dump : (await stack.outputs()).backupPath?.value;
    if (typeof dump !== "string") throw new Error(`stack ${flags.stack} has no recorded backup (output backupPath): pass --dump FILE`);

    const timings = await restoreFromDump(config, dump, (line) => process.stdout.write(`${line}\n`));
    process.stdout.write(`restore: done in ${timings.totalSeconds.toFixed(1)}s (pg_restore ${timings.pgRestoreSeconds.toFixed(1)}s)\n`);

    for (const urn of await urnsOfType(stack, "protea:rollout:Migration")) {
        process.stdout.write(`restore: removing ${urn} and its dependents from the state (the database no longer has them)\n`);
        execFileSync("pulumi", ["state", "delete", urn, "--target-dependents", "--yes", "--stack", flags.stack], { stdio: "inherit", cwd: stack.workspace.workDir });
    }
}

main().catch((err: Error) => {
    process.stderr.write(`restore: ${err.message}\n`);
    process.exit(1);
});
