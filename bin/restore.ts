/**
 * `npm run restore -- --stack <name> --confirm <database>`: the runbook's
 * fallback when the rollback itself fails. Checks the dump first (its
 * recorded SHA-256, then `pg_restore --list`), then drops schema public and
 * restores the dump in one transaction (lib/runbook/restore.ts), stamps the expected
 * head, checks the result, and removes the migration and its dependents
 * from the stack's state, since the database no longer has them.
 */
import { cliSpec, readCli } from "../lib/process/cliOptions";
import { installOutputScrubber } from "../lib/process/scrub";
import { passwordForms } from "../lib/postgres/database";
import { RestoreRefused, restoreFromDump, RestoreTimings, StampFailed } from "../lib/runbook/restore";
import { forgetMigration, keepWritersResumed, openStack, recordOutcome, stackConfig, stackId } from "../lib/runbook/stack";

const CLI = cliSpec({
    usage: "npm run restore --",
    description: `Drops schema public of the stack's database and restores it from a dump, in
one transaction: if anything fails, the database stays as it was.`,
    options: {
        stack: { type: "string", value: "NAME", required: true, description: "the stack whose database to restore" },
        confirm: { type: "string", value: "DATABASE", description: "the database's name, typed out: this DROPS SCHEMA public CASCADE (without it, nothing changes)" },
        dump: { type: "string", value: "FILE", description: "the dump to restore (default: the backup that guards the stack's current apply, output backupPath)" },
        sha256: { type: "string", value: "HEX", description: "the dump's checksum, when neither the stack nor <dump>.sha256 records it" },
    },
});

async function main(): Promise<void> {
    const flags = readCli(process.argv.slice(2), CLI);
    const stack = openStack(flags.stack);
    const { rollout: config, dbUrl } = await stackConfig(stack);
    installOutputScrubber(passwordForms(config));
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

    let timings: RestoreTimings;
    let stampFailure: StampFailed | undefined;
    try {
        timings = await restoreFromDump(config, dbUrl, dump, await stackId(stack), (line) => process.stdout.write(`${line}\n`));
    } catch (err) {
        if (!(err instanceof StampFailed)) throw err;
        // The data is back: the state must say so whatever the stamp did.
        stampFailure = err;
        timings = err.timings;
    }
    process.stdout.write(`restore: ${stampFailure ? "data restored" : "done"} in ${timings.totalSeconds.toFixed(1)}s (restore ${timings.restoreSeconds.toFixed(1)}s, stamp ${timings.stampSeconds.toFixed(1)}s)\n`);
    await keepWritersResumed(stack, (await stack.exportStack()).deployment);
    await forgetMigration(stack, (line) => process.stdout.write(`restore: ${line}\n`));
    await recordOutcome(stack, { migration: `restored from ${dump.path} at ${new Date().toISOString()}`, restoredFrom: { path: dump.path, sha256: dump.sha256 ?? null, at: new Date().toISOString() } });
    if (stampFailure) throw stampFailure;
}

installOutputScrubber();
main().catch((err: Error) => {
    process.stderr.write(`restore: ${err.message}\n`);
    process.exit(1);
});
