/**
 * Reads a stack's `rollout:*` (and, on a drill stack, `drill:*`) config into
 * validated objects: from the engine inside the program, from the Automation
 * API in the CLIs. The only place raw config is interpreted.
 */
import * as os from "node:os";
import { RawConfig, RolloutConfig, RolloutConfigError } from "./config";
import { CONFIG_KEYS, parseRolloutConfig } from "./parseRolloutConfig";
import { DRILL_KEYS, DrillConfig, drillDatabaseUrl, parseDrillConfig } from "./drillConfig";
import { readPasswordFile } from "./passwordFile";
import { PROJECT_ROOT } from "../process/projectRoot";

export { PROJECT_ROOT };

export interface StackConfig {
    rollout: RolloutConfig;
    /** The database URL (treat as secret); on a drill stack, the clone's. */
    dbUrl: string;
    /** Set on a drill stack (one that sets drill:engine). */
    drill?: DrillConfig;
}

/**
 * `get` returns a full key's value (`rollout:dbUrl`); `secretKeys`, when
 * known, lists the keys stored encrypted. Throws RolloutConfigError listing
 * every problem.
 */
export function resolveStackConfig(get: (key: string) => string | undefined, secretKeys?: string[]): StackConfig {
    const problems: string[] = [];
    const readNamespace = (namespace: string, keys: readonly string[]): RawConfig =>
        Object.fromEntries(keys.map((key) => [key, get(`${namespace}:${key}`)]));
    const requireSecret = (key: string, value: string | undefined) => {
        // A plain-text password would sit unencrypted in Pulumi.<stack>.yaml.
        if (value && secretKeys && !secretKeys.includes(key)) {
            problems.push(`${key} is stored in plain text: set it again with \`pulumi config set --secret ${key} …\``);
        }
    };

    const raw = readNamespace("rollout", CONFIG_KEYS);
    let drill: DrillConfig | undefined;
    if (get("drill:engine") !== undefined) {
        const drillRaw = readNamespace("drill", DRILL_KEYS);
        requireSecret("drill:password", drillRaw.password);
        try {
            drill = parseDrillConfig(drillRaw, PROJECT_ROOT);
            raw.dbUrl = drillDatabaseUrl(drill);
            if (drill.engine === "docker") {
                // The host's client tools may be older than the clone's server.
                Object.assign(raw, { pgAccess: "docker-exec", container: drill.containerName, dbUser: "protea", dbName: "protea" });
            }
        } catch (err) {
            if (!(err instanceof RolloutConfigError)) throw err;
            problems.push(...err.problems);
            // The clone's URL is derived, not configured: do not also ask for rollout:dbUrl.
            raw.dbUrl = "postgresql://drill@127.0.0.1/drill";
        }
    } else {
        // With rollout:dbPasswordFile the URL holds no password, and need not be a secret.
        if (!raw.dbPasswordFile) requireSecret("rollout:dbUrl", raw.dbUrl);
    }
    let rollout: RolloutConfig | undefined;
    try {
        rollout = parseRolloutConfig(raw, os.homedir(), PROJECT_ROOT);
    } catch (err) {
        if (!(err instanceof RolloutConfigError)) throw err;
        problems.push(...err.problems);
    }
    if (rollout?.dbPasswordFile) {
        try {
            // In memory only: for the program's and the CLIs' own connections.
            rollout.database.password = readPasswordFile(rollout.dbPasswordFile);
        } catch (err) {
            problems.push((err as Error).message);
        }
    }
    if (problems.length > 0 || !rollout) throw new RolloutConfigError(problems);
    return { rollout, dbUrl: raw.dbUrl!, drill };
}
