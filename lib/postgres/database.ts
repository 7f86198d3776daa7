/**
 * Connections for gates and probes. The URL comes from the environment
 * (PROTEA_DB_URL, as the application gets it), never from an argument.
 */
import { Client } from "pg";
import { parseDatabaseUrl, LibpqSettings, pgSsl } from "../config/databaseUrl";
import { readPasswordFile } from "../config/passwordFile";
import { secretForms } from "../process/scrub";

/** The variable that carries rollout:dbPasswordFile (as configured) to the commands. */
export const PASSWORD_FILE_VARIABLE = "PROTEA_DB_PASSWORD_FILE";
/** Where the product's own commands read rollout:dbUrl; the application's default variable too. */
export const DB_URL_VARIABLE = "PROTEA_DB_URL";
/** Carries rollout:dbUrlEnv to the commands when the application reads another variable. */
export const APP_URL_VARIABLE = "PROTEA_APP_DB_URL_VARIABLE";

/** What every database step gets in its environment: the URL, where its password is when it is not in the URL, and the application's variable. */
export function stepEnvironment(settings: { dbPasswordFile?: string; dbUrlEnv: string }, url: string): Record<string, string> {
    return {
        [DB_URL_VARIABLE]: url,
        ...(settings.dbPasswordFile ? { [PASSWORD_FILE_VARIABLE]: settings.dbPasswordFile } : {}),
        // Only when it differs, so a stack applied before rollout:dbUrlEnv existed sees no change.
        ...(settings.dbUrlEnv !== DB_URL_VARIABLE ? { [APP_URL_VARIABLE]: settings.dbUrlEnv } : {}),
    };
}

/**
 * The environment of a command the product runs for the application
 * (alembic, the backfill, the stamp, the writers' commands): the URL exactly
 * as configured (the password file's password put in) in the variable the
 * application reads (rollout:dbUrlEnv), and no other copy of it.
 */
export function applicationEnvironment(env: NodeJS.ProcessEnv = process.env, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const variable = env[APP_URL_VARIABLE] || DB_URL_VARIABLE;
    const out: NodeJS.ProcessEnv = { ...env, ...extra };
    delete out[APP_URL_VARIABLE];
    if (variable !== DB_URL_VARIABLE) {
        delete out[DB_URL_VARIABLE];
        if (env[DB_URL_VARIABLE] !== undefined) out[variable] = env[DB_URL_VARIABLE];
    }
    return out;
}

/**
 * With rollout:dbPasswordFile, the URL in PROTEA_DB_URL has no password: put
 * the file's into it for this process and the children it starts (alembic,
 * the backfill), which take the URL as it is.
 */
export function completeDatabaseUrlFromPasswordFile(env: NodeJS.ProcessEnv = process.env): void {
    const setting = env[PASSWORD_FILE_VARIABLE];
    const url = env[DB_URL_VARIABLE];
    if (!setting || !url) return;
    // user@ -> user:<password>@ in the authority, whatever follows (a socket URL has no host).
    const password = encodeURIComponent(readPasswordFile(setting));
    env[DB_URL_VARIABLE] = url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^:@/?#]+)@/, `$1$2:${password}@`);
}

/** A stack's step environment outside a stored command (restore, the drill): as the steps get it, with the password file read. */
export function completedStepEnvironment(settings: { dbPasswordFile?: string; dbUrlEnv: string }, url: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const out = { ...env, ...stepEnvironment(settings, url) };
    completeDatabaseUrlFromPasswordFile(out);
    return out;
}

/** The stack's password in every form a program may print it, from the URL or rollout:dbPasswordFile, for the output scrubber. */
export function passwordForms(settings: { database: LibpqSettings; dbPasswordFile?: string }): string[] {
    let fromFile: string | undefined;
    try {
        fromFile = settings.dbPasswordFile ? readPasswordFile(settings.dbPasswordFile) : undefined;
    } catch {
        // An unreadable file is reported where it is used.
    }
    return [...secretForms(settings.database.password), ...secretForms(fromFile)];
}

/** The password of the URL in PROTEA_DB_URL in every printed form; none when it is unset or does not parse (the scrubber's URL rule still applies). */
export function environmentPasswordForms(env: NodeJS.ProcessEnv = process.env): string[] {
    try {
        return env[DB_URL_VARIABLE] ? secretForms(databaseFromEnvironment(env).password) : [];
    } catch {
        return [];
    }
}

export function databaseFromEnvironment(env: NodeJS.ProcessEnv = process.env): LibpqSettings {
    const url = env[DB_URL_VARIABLE];
    if (!url) {
        throw new Error("PROTEA_DB_URL is not set: the rollout passes rollout:dbUrl in it; set it when running this by hand");
    }
    return parseDatabaseUrl(url);
}

/** Connects, or fails with a message that says which database did not answer and why. */
export async function connect(settings: LibpqSettings, applicationName = "protea-rollout"): Promise<Client> {
    const client = new Client({
        host: settings.host,
        port: settings.port,
        user: settings.user,
        password: settings.password,
        database: settings.database,
        application_name: applicationName,
        connectionTimeoutMillis: 10_000,
        ssl: pgSsl(settings),
        ...(settings.params?.options ? { options: settings.params.options } : {}),
    });
    try {
        await client.connect();
    } catch (err) {
        throw new Error(
            `the database does not answer at ${settings.host}:${settings.port} (database "${settings.database}", user "${settings.user}"): ${(err as Error).message}; check rollout:dbUrl and that PostgreSQL is running`,
        );
    }
    return client;
}

export async function withDatabase<T>(settings: LibpqSettings, use: (client: Client) => Promise<T>): Promise<T> {
    const client = await connect(settings);
    try {
        return await use(client);
    } finally {
        await client.end();
    }
}
