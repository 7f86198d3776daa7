/**
 * Reads the stack's `rollout:*` config into a validated RolloutConfig. The
 * only place the program touches raw config.
 */
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_KEYS, parseRolloutConfig, RawConfig, RolloutConfig, RolloutConfigError } from "./config";

export function readRolloutConfig(): RolloutConfig {
    const raw: RawConfig = {};
    for (const key of CONFIG_KEYS) raw[key] = pulumi.runtime.getConfig(`rollout:${key}`);
    const problems: string[] = [];
    // The engine lists which keys are secret; a plain-text dbUrl would sit
    // unencrypted in Pulumi.<stack>.yaml.
    const secretKeys = process.env.PULUMI_CONFIG_SECRET_KEYS;
    if (raw.dbUrl !== undefined && secretKeys !== undefined && !(JSON.parse(secretKeys) as string[]).includes("rollout:dbUrl")) {
        problems.push("rollout:dbUrl is stored in plain text: set it again with `pulumi config set --secret rollout:dbUrl …`");
    }
    let config: RolloutConfig | undefined;
    try {
        config = parseRolloutConfig(raw);
    } catch (err) {
        if (!(err instanceof RolloutConfigError)) throw err;
        problems.push(...err.problems);
    }
    if (problems.length > 0 || !config) {
        // RunError prints the message alone, without a stack trace.
        throw new pulumi.RunError(new RolloutConfigError(problems).message);
    }
    return config;
}
