/**
 * The application takes a SQLAlchemy URL (`postgresql+psycopg://…`) in
 * PROTEA_DB_URL; client tools and `pg` take libpq settings. Both come from the
 * one secret `rollout:dbUrl`, and the password only ever travels in
 * environment variables.
 */

export interface LibpqSettings {
    host: string;
    port: number;
    user: string;
    password?: string;
    database: string;
}

export class DatabaseUrlError extends Error {
    constructor(message: string) {
        super(`rollout:dbUrl: ${message} (set it with \`pulumi config set --secret rollout:dbUrl 'postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB'\`)`);
        this.name = "DatabaseUrlError";
    }
}

const ACCEPTED_SCHEMES = ["postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+asyncpg"];

/** Parses a SQLAlchemy or libpq URL; the error never repeats the URL (it holds a password). */
export function parseDatabaseUrl(url: string): LibpqSettings {
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        throw new DatabaseUrlError("is not a URL");
    }
    const scheme = parsed.protocol.replace(/:$/, "");
    if (!ACCEPTED_SCHEMES.includes(scheme)) {
        throw new DatabaseUrlError(`scheme "${scheme}" is not a PostgreSQL URL; use postgresql+psycopg://`);
    }
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
    if (!parsed.hostname) throw new DatabaseUrlError("has no host");
    if (!parsed.username) throw new DatabaseUrlError("has no user");
    if (!database) throw new DatabaseUrlError("has no database name");
    return {
        host: parsed.hostname.replace(/^\[|\]$/g, ""),
        port: parsed.port ? Number(parsed.port) : 5432,
        user: decodeURIComponent(parsed.username),
        password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
        database,
    };
}

/** The libpq environment (PGHOST, PGPASSWORD, …) for client tools and `pg`. */
export function libpqEnvironment(settings: LibpqSettings): Record<string, string> {
    const env: Record<string, string> = {
        PGHOST: settings.host,
        PGPORT: String(settings.port),
        PGUSER: settings.user,
        PGDATABASE: settings.database,
    };
    if (settings.password !== undefined) env.PGPASSWORD = settings.password;
    return env;
}

/** The same database as a SQLAlchemy psycopg URL, as the application expects. */
export function sqlalchemyUrl(settings: LibpqSettings): string {
    const auth = encodeURIComponent(settings.user) + (settings.password !== undefined ? `:${encodeURIComponent(settings.password)}` : "");
    const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
    return `postgresql+psycopg://${auth}@${host}:${settings.port}/${encodeURIComponent(settings.database)}`;
}
