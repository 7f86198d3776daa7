/**
 * The drill stack's `drill:*` configuration, and the folder its Pulumi
 * commands run in.
 *
 * A stack is a drill when it sets `drill:engine`; the rollout then runs
 * against the clone it creates. Its tracked config (`Pulumi.<stack>.yaml`, or
 * `Pulumi.drill.yaml` for a drill stack without its own) is a template of
 * defaults that nothing writes to. Every Pulumi command of a drill stack runs
 * in its working folder `.state/drill/<stack>/` (gitignored): a generated
 * `Pulumi.yaml` whose `main` is the checkout, and the working copy of the
 * stack's config, where the engine keeps what it generates (`encryptionsalt`,
 * the secret `drill:password`, the picked `drill:port`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expandHome, RawConfig, RolloutConfigError } from "./config";
import { PROJECT_ROOT } from "../process/projectRoot";

export type DrillEngine = "local" | "docker";

/** A generated PROTEA-shaped sample (test/fixtures/protea/scripts/seed_sample.py). */
export interface DrillSample {
    datasets: number;
    models: number;
    /** Rows of the bulk embedding table: the knob for a multi-GB clone. */
    embeddingRows: number;
}

export interface DrillConfig {
    engine: DrillEngine;
    port: number;
    password: string;
    /** drill:sourceDump as configured: what stored commands carry ("~" and relative paths are resolved by the tool). */
    sourceDump?: string;
    /** drill:sourceDump resolved for this checkout. */
    sourceDumpPath?: string;
    sample: DrillSample;
    /**
     * drill:stateDir as configured; unset: the default {@link defaultClusterDir},
     * which moves to a private folder under /var/tmp when the server's OS user
     * cannot reach it.
     */
    stateDir?: string;
    seed: string;
    /** docker engine: the image (a locally built one is used as it is, never pulled). */
    image: string;
    containerName: string;
    /**
     * Local engine, from a dump: keep the dump's pristine copy
     * (.state/drill-pristine/<sha256>) when the drill's teardown removes the
     * clone, for the next drill to clone (default true); false drops it
     * (`npm run drill -- --drop-pristine` for one drill).
     */
    keepPristine: boolean;
}

export const DRILL_KEYS = ["engine", "port", "password", "sourceDump", "datasets", "models", "embeddingRows", "stateDir", "seed", "image", "containerName", "keepPristine"] as const;

/** drill:image unset: the runbook's drill image, with the `vector` extension the local engine lacks. */
export const DEFAULT_DRILL_IMAGE = "pgvector/pgvector:pg16";

/** The template every drill stack without its own Pulumi.<stack>.yaml starts from. */
export const DRILL_TEMPLATE = "Pulumi.drill.yaml";

/** A configured path ("~" is the home, relative is from the project root) for this checkout. */
export function resolveDrillPath(setting: string, baseDir = PROJECT_ROOT): string {
    return path.resolve(baseDir, expandHome(setting));
}

/**
 * A path for a stored command: relative to the project root when it lies in
 * the checkout (the tool resolves it against its own checkout at run time),
 * otherwise as given.
 */
export function checkoutRelative(p: string, root = PROJECT_ROOT): string {
    if (!path.isAbsolute(p)) return p;
    const relative = path.relative(root, p);
    if (relative === "") return ".";
    return relative.startsWith("..") || path.isAbsolute(relative) ? p : relative;
}

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
    const keepPristine = raw.keepPristine === undefined || raw.keepPristine === "" ? "true" : raw.keepPristine;
    if (keepPristine !== "true" && keepPristine !== "false") problems.push(`drill:keepPristine must be "true" or "false", got "${raw.keepPristine}"`);
    if (!raw.password) problems.push("drill:password is not set: `npm run drill` sets one, or run `npm run pulumi -- config set --secret drill:password <random> --stack <drill stack>`");
    if (raw.port === undefined || raw.port === "") {
        problems.push("drill:port is not set: `npm run drill` and `npm run pulumi -- … --stack <drill stack>` pick a free port and keep it in .state/drill/<stack>/, or set one with `npm run pulumi -- config set drill:port <port> --stack <drill stack>`");
    }
    const config: DrillConfig = {
        engine: engine as DrillEngine,
        port: count("port", 0, 1024, 65535),
        password: raw.password ?? "",
        sourceDump: raw.sourceDump || undefined,
        sourceDumpPath: raw.sourceDump ? resolveDrillPath(raw.sourceDump, baseDir) : undefined,
        sample: { datasets: count("datasets", 2, 1, 10_000_000), models: count("models", 51, 0, 100_000_000), embeddingRows: count("embeddingRows", 0, 0, 1_000_000_000) },
        stateDir: raw.stateDir || undefined,
        seed: raw.seed || "../../../.state/venv/bin/python scripts/seed_sample.py",
        image: raw.image || DEFAULT_DRILL_IMAGE,
        containerName: raw.containerName || "protea-drill-postgres",
        keepPristine: keepPristine !== "false",
    };
    if (problems.length > 0) throw new RolloutConfigError(problems);
    return config;
}

/** The clone's URL: the `protea` role on 127.0.0.1, as the local cluster and the container create it. */
export function drillDatabaseUrl(drill: DrillConfig): string {
    return `postgresql+psycopg://protea:${encodeURIComponent(drill.password)}@127.0.0.1:${drill.port}/protea`;
}

/** The local cluster's default directory, relative to the project root. */
export function defaultClusterDir(stackName: string): string {
    return path.posix.join(".state", "drill", stackName, "cluster");
}

/**
 * The clone's tables as loaded (row count and checksum each), written before
 * the rollout starts for the drill to compare after the restore; in the
 * stack's working folder, relative to the project root.
 */
export function tablesSnapshotFile(stackName: string): string {
    return path.posix.join(".state", "drill", stackName, "tables-before-rollout.json");
}

/**
 * What the local cluster's commands are given: drill:stateDir as configured,
 * exactly there; or the default, which may move (`relocatable`).
 */
export function clusterDirSetting(stackName: string, stateDir: string | undefined): { setting: string; relocatable: boolean } {
    return stateDir ? { setting: stateDir, relocatable: false } : { setting: defaultClusterDir(stackName), relocatable: true };
}

// ---------------------------------------------------------------------------
// The working folder
// ---------------------------------------------------------------------------

const STACK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `.state/drill/<stack>`: where every Pulumi command of a drill stack runs. */
export function drillWorkDir(stackName: string, root = PROJECT_ROOT): string {
    if (!STACK_NAME.test(stackName)) throw new Error(`"${stackName}" is not a usable drill stack name (letters, digits, ".", "_", "-")`);
    return path.join(root, ".state", "drill", stackName);
}

/** The working copy of the stack's config. */
export function drillConfigFile(stackName: string, root = PROJECT_ROOT): string {
    return path.join(drillWorkDir(stackName, root), `Pulumi.${stackName}.yaml`);
}

function setsDrillEngine(file: string): boolean {
    return /^\s*drill:engine\s*:/m.test(fs.readFileSync(file, "utf8"));
}

/**
 * The tracked template a drill stack's working copy is made from: its own
 * Pulumi.<stack>.yaml when that sets drill:engine, Pulumi.drill.yaml when it
 * has none; undefined when the stack is not a drill (e.g. prod).
 */
export function drillTemplateFile(stackName: string, root = PROJECT_ROOT): string | undefined {
    const own = path.join(root, `Pulumi.${stackName}.yaml`);
    if (fs.existsSync(own)) return setsDrillEngine(own) ? own : undefined;
    return path.join(root, DRILL_TEMPLATE);
}

/**
 * True when `stackName` runs from a drill working folder: it has one, or its
 * own Pulumi.<stack>.yaml sets drill:engine, or it is `drill` (as
 * scripts/pulumi.sh decides).
 */
export function isDrillStack(stackName: string, root = PROJECT_ROOT): boolean {
    if (!STACK_NAME.test(stackName)) return false;
    if (fs.existsSync(drillConfigFile(stackName, root))) return true;
    const own = path.join(root, `Pulumi.${stackName}.yaml`);
    return fs.existsSync(own) ? setsDrillEngine(own) : stackName === "drill";
}

/**
 * The working folder's Pulumi.yaml: the project's own, run from the checkout
 * three folders up (`main`), so the program, its relative paths and the
 * project's name are the checkout's.
 */
export function workingProjectFile(root = PROJECT_ROOT): string {
    const project = fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8");
    if (/^main\s*:/m.test(project)) throw new Error("Pulumi.yaml sets main; the drill's working folder needs to set it to the checkout");
    return `# Generated from ../../../Pulumi.yaml for the drill's working folder (lib/config/drillConfig.ts); do not edit.\nmain: ../../..\n${project}`;
}

/** Writes the working folder's Pulumi.yaml when it is missing or differs. */
export function writeWorkingProject(stackName: string, root = PROJECT_ROOT): string {
    const dir = drillWorkDir(stackName, root);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, "Pulumi.yaml");
    const text = workingProjectFile(root);
    if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) fs.writeFileSync(file, text);
    else fs.utimesSync(file, new Date(), new Date()); // up to date: newer than the project's (scripts/pulumi.sh compares)
    return dir;
}

/** A stack's config file as the Automation API reads and writes it. */
export interface StackSettingsLike {
    secretsProvider?: string;
    encryptedKey?: string;
    encryptionSalt?: string;
    config?: Record<string, unknown>;
    [key: string]: unknown;
}

/** What the engine generates for a stack; the only things a new working copy takes from the previous one. */
const GENERATED_SETTINGS = ["secretsProvider", "encryptedKey", "encryptionSalt"] as const;

/**
 * The working copy for one drill: the template (less any secret or salt a
 * template should never hold), plus from the previous copy only what the
 * engine or the drill generated (the secrets provider's salt, the secret
 * drill:password, and drill:port when the template leaves it unset), plus this
 * drill's `overrides` (a key set to undefined or "" is removed).
 */
export function workingSettings(template: StackSettingsLike, previous: StackSettingsLike | undefined, overrides: Record<string, string | undefined> = {}): StackSettingsLike {
    const settings = withoutStackSecrets(template);
    const config = settings.config!;
    if (previous) {
        for (const key of GENERATED_SETTINGS) if (previous[key] !== undefined) settings[key] = previous[key];
        const password = previous.config?.["drill:password"];
        if (isSecure(password)) config["drill:password"] = password;
        if (config["drill:port"] === undefined && previous.config?.["drill:port"] !== undefined) config["drill:port"] = previous.config["drill:port"];
    }
    for (const [key, value] of Object.entries(overrides)) {
        if (value === undefined || value === "") delete config[key];
        else config[key] = value;
    }
    return settings;
}

/** Drops what belongs to a stack that no longer exists in the backend (salt, secrets). */
export function withoutStackSecrets(settings: StackSettingsLike): StackSettingsLike {
    const copy: StackSettingsLike = { ...settings, config: { ...(settings.config ?? {}) } };
    for (const key of GENERATED_SETTINGS) delete copy[key];
    for (const [key, value] of Object.entries(copy.config!)) if (isSecure(value)) delete copy.config![key];
    return copy;
}

function isSecure(value: unknown): value is { secure: string } {
    return typeof value === "object" && value !== null && typeof (value as { secure?: unknown }).secure === "string";
}
