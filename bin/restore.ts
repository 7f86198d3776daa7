/**
 * `npm run restore -- --stack <name> --confirm <database>`: the runbook's
 * fallback when the rollback itself fails. Checks the dump first (its
 * recorded SHA-256, then `pg_restore --list`), then drops schema public and
 * restores the dump in one transaction (lib/restore.ts), stamps the expected
 * head, checks the result, and removes the migration and its dependents
 * from the stack's state, since the database no longer has them.
 */
import { parseFlags } from "../lib/cliFlags";
import { RestoreRefused, restoreFromDump } from "../lib/restore";
import { forgetMigration, openStack, recordOutcome, stackConfig, stackId } from "../lib/stack";

const USAGE = `usage: npm run restore -- --stack <name> --confirm <database name> [--dump FILE [--sha256 HEX]]

Drops schema public of the stack's database and restores it from a dump, in
one transaction: if anything fails, the database stays as it was.
  --stack    the stack whose database to restore
  --confirm  the database's name, typed out: this DROPS SCHEMA public CASCADE
  --dump     the dump to restore (default: the backup that guards the stack's
             current apply, output backupPath)
  --sha256   the dump's checksum, when neither the stack nor <dump>.sha256 records it`;

async function main(): Promise<void> {
    const flags = parseFlags(process.argv.slice(2), { stack: "value", confirm: "value", dump: "value", sha256: "value" }, USAGE);
    if (typeof flags.stack !== "string") throw new Error(`--stack is required\n\n${USAGE}`);
    const stack = openStack(flags.stack);
    const { rollout: config } = await stackConfig(stack);
    const databaseName = config.pgAccess === "docker-exec" ? config.dbName : config.database.database;
    if (flags.confirm !== databaseName) {
        throw new RestoreRefused(`restoring drops schema public of database "${databaseName}": pass --confirm ${databaseName} to go on; nothing changed`);
    }
    const outputs = await stack.outputs();
    const recorded = { path: outputs.backupPath as string | undefined, sha256: outputs.backupSha256 as string | undefined };
    const earlier = (outputs.earlierBackups ?? []) as { path: string; sha256: string }[];
    let dump: { path: string; sha256?: string };
    if (typeof flags.dump === "string") {
        // A dump the stack recorded keeps its recorded checksum.
        const known = [recorded, ...earlier].find((d) => d.path === flags.dump);
        dump = { path: flags.dump, sha256: typeof flags.sha256 === "string" ? flags.sha256 : known?.sha256 };
    } else if (recorded.path) {
        dump = { path: recorded.path, sha256: recorded.sha256 };
    } else {
        throw new RestoreRefused(`stack ${flags.stack} has no recorded backup (output backupPath): pass --dump FILE; nothing changed`);
    }

    const timings = await restoreFromDump(config, dump, await stackId(stack), (line) => process.stdout.write(`${line}\n`));
    process.stdout.write(`restore: done in ${timings.totalSeconds.toFixed(1)}s (restore ${timings.restoreSeconds.toFixed(1)}s, stamp ${timings.stampSeconds.toFixed(1)}s)\n`);
    await forgetMigration(stack, (line) => process.stdout.write(`restore: ${line}\n`));
    await recordOutcome(stack, { migration: `restored from ${dump.path} at ${new Date().toISOString()}`, restoredFrom: { path: dump.path, sha256: dump.sha256 ?? null, at: new Date().toISOString() } });
}

main().catch((err: Error) => {
    process.stderr.write(`restore: ${err.message}\n`);
    process.exit(1);
});
