/**
 * Connections for gates and probes. The URL comes from the environment
 * (PROTEA_DB_URL, as the application gets it), never from an argument.
 */
import { Client } from "pg";
import { parseDatabaseUrl, LibpqSettings, pgSsl } from "../config/databaseUrl";
import { readPasswordFile } from "../config/passwordFile";

/** The variable that carries rollout:dbPasswordFile (as configured) to the commands. */
export const PASSWORD_FILE_VARIABLE = "PROTEA_DB_PASSWORD_FILE";

/**
 * With rollout:dbPasswordFile, the URL in PROTEA_DB_URL has no password: put
 * the file's into it for this process and the children it starts (alembic,
 * the backfill), which take the URL as it is.
 */
export function completeDatabaseUrlFromPasswordFile(env: NodeJS.ProcessEnv = process.env): void {
    const setting = env[PASSWORD_FILE_VARIABLE];
    const url = env.PROTEA_DB_URL;
    if (!setting || !url) return;
    // user@ -> user:<password>@ in the authority, whatever follows (a socket URL has no host).
    const password = encodeURIComponent(readPasswordFile(setting));
    env.PROTEA_DB_URL = url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^:@/?#]+)@/, `$1$2:${password}@`);
}

export function databaseFromEnvironment(env: NodeJS.ProcessEnv = process.env): LibpqSettings {
    const url = env.PROTEA_DB_URL;
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
