import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { RolloutConfig } from "../lib/config/config";
import { appliedByThisStack, formatProbeReport, parseProbeReport, ProbeReport, redactReport, secretsOf } from "../lib/preview/probeReport";
import { clientToolArgs, rolloutCommand, versionTableArgs } from "../lib/runbook/rolloutCli";
import { commandEnvironment } from "./types";

/** The dry run as a stack output: every probe's fact (or why it failed) and the preview's warnings. */
export interface DryRun extends Omit<ProbeReport, "pendingSql" | "lockSafety"> {
    /** Absent once this stack's migration is applied. */
    pendingSql?: ProbeReport["pendingSql"];
    lockSafety?: ProbeReport["lockSafety"];
    /** The warnings the preview logged, without the "dry run: " prefix. */
    warnings: string[];
}

/**
 * The probe's command line (`rollout probe …`). It never fails the invoke:
 * a probe that dies prints no report, and the preview says so instead of
 * failing.
 */
export function probeCommand(config: RolloutConfig): string {
    const probe = rolloutCommand(
        "probe",
        "--app-dir", config.appDir,
        "--alembic", config.alembic,
        "--backfill", config.backfill,
        "--expected-head", config.expectedHead,
        "--target-revision", config.targetRevision,
        ...versionTableArgs(config.alembicVersionTable),
        "--backup-dir", config.backupDir,
        "--columns", JSON.stringify(config.newColumns),
        "--lock-timeout", config.lockTimeout,
        ...clientToolArgs(config),
        ...(config.rehearsal
            ? ["--rehearsal", config.rehearsal.setting, "--rehearsal-size-factor", config.rehearsal.sizeFactor, "--budget-multiple", config.rehearsal.budget.multiple, "--budget-floor", `${config.rehearsal.budget.floorMs}ms`]
            : []),
        ...(config.parityCutover ? ["--parity-cutover", config.parityCutover.value, ...(config.parityCutover.column ? ["--parity-cutover-column", config.parityCutover.column] : [])] : []),
    );
    return `${probe} || true`;
}

/**
 * The runbook's dry run inside `pulumi preview`: read-only probes of the
 * database, alembic, the pending SQL and the backfill, logged on the stack
 * and returned as one output. Runs only in preview (`pulumi up` pays nothing
 * and the output is absent after an update); nothing it runs writes (see
 * lib/preview/probes.ts). `dbUrl` reaches the probe only in its environment.
 */
export function previewReport(config: RolloutConfig, dbUrl: pulumi.Input<string>, migrationResult?: Promise<pulumi.Output<unknown>>): pulumi.Output<DryRun> | undefined {
    if (!pulumi.runtime.isDryRun()) return undefined;
    const url = pulumi.secret(dbUrl);
    const probe = command.local.runOutput({
        command: probeCommand(config),
        environment: url.apply((u) => commandEnvironment(config, u)),
        // Progress lines only; the report line is parsed, not shown.
        logging: "stderr",
    });
    // The probe scrubs the URL and its password from what it prints; scrubbing
    // again here, where the secret is known, is what makes unsecret safe.
    const report = pulumi.all([probe.stdout, probe.stderr, url]).apply(([stdout, stderr, secret]) => redactReport(parseProbeReport(stdout, stderr), secretsOf(secret)));
    // In a preview, a command's output is known only when this stack's state holds it unchanged
    // (a command to create or update has unknown output, with upstream's provider too).
    // The probe starts before the program declares the migration (it is the preview's longest part); its result waits for that.
    return pulumi.unsecret(report).apply(async (facts) => {
        const stackHoldsMigration = migrationResult ? await ((await migrationResult) as unknown as { isKnown: Promise<boolean> }).isKnown : false;
        const lines = formatProbeReport(facts, { stackHoldsMigration, parityCutover: config.parityCutover });
        const stack = pulumi.runtime.getStackResource();
        for (const line of lines) {
            if (line.level === "warn") pulumi.log.warn(line.text, stack);
            else pulumi.log.info(line.text, stack);
        }
        // Once applied, the migration's SQL and its lock reading ask nothing of the operator: not in the output either.
        const { pendingSql, lockSafety, ...rest } = facts;
        const shown = appliedByThisStack(facts, stackHoldsMigration) ? rest : { ...rest, pendingSql, lockSafety };
        return { ...shown, warnings: lines.filter((l) => l.level === "warn").map((l) => l.text.replace(/^dry run: /, "")) };
    });
}
