import * as pulumi from "@pulumi/pulumi";

/**
 * Environment for commands that reach the database: PROTEA_DB_URL (secret)
 * and anything else a step needs. Secrets travel only here, never in a
 * command string.
 */
export type CommandEnvironment = pulumi.Input<Record<string, pulumi.Input<string>>>;
