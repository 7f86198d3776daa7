/** The program's view of its stack config: read from the engine, errors as RunError. */
import * as pulumi from "@pulumi/pulumi";
import { missingTools } from "../process/builtTools";
import { RolloutConfigError } from "./config";
import { resolveStackConfig, StackConfig } from "./stackConfig";

export function readStackConfig(): StackConfig {
    const tools = missingTools();
    if (tools) throw new pulumi.RunError(tools);
    const secretKeys = process.env.PULUMI_CONFIG_SECRET_KEYS;
    try {
        return resolveStackConfig((key) => pulumi.runtime.getConfig(key), secretKeys ? (JSON.parse(secretKeys) as string[]) : undefined);
    } catch (err) {
        // RunError prints the message alone, without a stack trace, before any resource exists.
        if (err instanceof RolloutConfigError) throw new pulumi.RunError(err.message);
        throw err;
    }
}
