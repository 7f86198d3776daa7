/**
 * The drill stack's `drill:*` configuration. A stack is a drill when it sets
 * `drill:engine`; the rollout then runs against the clone it creates.
 */
import * as path from "node:path";
import { expandHome, RawConfig, RolloutConfigError } from "./config";
import type { DrillEngine, DrillSample } from "../components/drillDatabase";

export interface DrillConfig {
    engine: DrillEngine;
    port: number;
    password: string;
    sourceDump?: string;
    sample: DrillSample;
    stateDir: string;
    seed: string;
    image: string;
    containerName: string;
}

export const DRILL_KEYS = ["engine", "port", "password", "sourceDump", "datasets", "models", "embeddingRows", "stateDir", "seed", "image", "containerName"] as const;

export function parseDrillConfig(raw: RawConfig, baseDir: string): DrillConfig {
    const problems: string[] = [];
    const count = (key: string, fallback: number, min: number, max: number) => {
        const value = raw[key];
        if (value === undefined || value === "") return fallback;
        const n = Number(value);
        if (!Number.isInteger(n) || n < min || n > max) problems.push(`drill:${key} must be a whole number from ${min} to ${max}, got "${value}"`);
        return n;
    };
    const engine = raw.engine ?? "local";
    if (engine !== "local" && engine !== "docker") problems.push(`drill:engine must be "local" or "docker", got "${engine}"`);
    if (!raw.password) problems.push("drill:password is not set: `npm run drill` sets one, or run `pulumi config set --secret drill:password <random>`");
    const config: DrillConfig = {
        engine: engine as DrillEngine,
        port: count("port", 55432, 1024, 65535),
        password: raw.password ?? "",
        sourceDump: raw.sourceDump ? path.resolve(baseDir, expandHome(raw.sourceDump)) : undefined,
        sample: { datasets: count("datasets", 2, 1, 10_000_000), models: count("models", 51, 0, 100_000_000), embeddingRows: count("embeddingRows", 0, 0, 1_000_000_000) },
        stateDir: path.resolve(baseDir, raw.stateDir || ".state/drill/cluster"),
        seed: raw.seed || "../../../.state/venv/bin/python scripts/seed_sample.py",
        image: raw.image || "pgvector/pgvector:pg16",
        containerName: raw.containerName || "protea-drill-postgres",
    };
    if (problems.length > 0) throw new RolloutConfigError(problems);
    return config;
}

/** The clone's URL: the `protea` role on 127.0.0.1, as the local cluster and the container create it. */
export function drillDatabaseUrl(drill: DrillConfig): string {
    return `postgresql+psycopg://protea:${encodeURIComponent(drill.password)}@127.0.0.1:${drill.port}/protea`;
}
