/**
 * The application takes a SQLAlchemy URL (`postgresql+psycopg://…`, any
 * driver) in its own variable (rollout:dbUrlEnv), exactly as configured;
 * client tools and `pg` take libpq settings. Both come from the one secret
 * `rollout:dbUrl`, parsed by the pg project's own parser
 * (pg-connection-string), and every parameter libpq knows reaches every
 * client: `?host=/var/run/postgresql` (a Unix socket), `sslmode`, `options`,
 * … as libpq environment variables for the client tools, as settings for
 * `pg`, and unchanged in the URL the application gets. The password only
 * ever travels in environment variables, or stays in rollout:dbPasswordFile.
 */
import * as fs from "node:fs";
import { parse } from "pg-connection-string";

export interface LibpqSettings {
    /** A host name or address, or a Unix-socket directory (starts with "/"). */
    host: string;
    port: number;
    user: string;
    password?: string;
    database: string;
    /** The URL's other libpq parameters (sslmode, options, …), as written. */
    params?: Record<string, string>;
}

export class DatabaseUrlError extends Error {
    constructor(message: string) {
        super(`rollout:dbUrl: ${message} (set it with \`pulumi config set --secret rollout:dbUrl 'postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB'\`)`);
        this.name = "DatabaseUrlError";
    }
}

const ACCEPTED_SCHEMES = ["postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+asyncpg"];

/** libpq parameters and the environment variables that carry them to client tools. */
const LIBPQ_ENVIRONMENT: Record<string, string> = {
    sslmode: "PGSSLMODE",
    sslrootcert: "PGSSLROOTCERT",
    sslcert: "PGSSLCERT",
    sslkey: "PGSSLKEY",
    sslcrl: "PGSSLCRL",
    sslnegotiation: "PGSSLNEGOTIATION",
    gssencmode: "PGGSSENCMODE",
    channel_binding: "PGCHANNELBINDING",
    options: "PGOPTIONS",
    application_name: "PGAPPNAME",
    connect_timeout: "PGCONNECT_TIMEOUT",
    target_session_attrs: "PGTARGETSESSIONATTRS",
    client_encoding: "PGCLIENTENCODING",
};
const IN_SETTINGS = ["host", "hostaddr", "port", "user", "password", "dbname"];

/** Parses a SQLAlchemy or libpq URL; the error never repeats the URL (it holds a password). */
export function parseDatabaseUrl(url: string): LibpqSettings {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1];
    if (!scheme) throw new DatabaseUrlError("is not a URL");
    if (!ACCEPTED_SCHEMES.includes(scheme)) throw new DatabaseUrlError(`scheme "${scheme}" is not a PostgreSQL URL; use postgresql+psycopg://`);
    const libpqUrl = `postgresql${url.slice(scheme.length)}`;
    let parsed: ReturnType<typeof parse>;
    let query: URLSearchParams;
    try {
        // Not `new URL`: it refuses credentials without a host, as in a Unix-socket URL.
        const [base, rawQuery = ""] = libpqUrl.split("#")[0].split("?");
        query = new URLSearchParams(rawQuery);
        // pg-connection-string sees only where and who: given ssl* parameters it reads certificate files and warns on stderr, and pgSsl() decides those.
        const settings = new URLSearchParams([...query].filter(([key]) => IN_SETTINGS.includes(key)));
        parsed = parse(settings.size > 0 ? `${base}?${settings}` : base);
    } catch {
        throw new DatabaseUrlError("is not a URL");
    }
    const host = parsed.host ?? "";
    if (!host) throw new DatabaseUrlError("has no host (a name, an address, or ?host=/path/to/socket/dir)");
    if (!parsed.user) throw new DatabaseUrlError("has no user");
    if (!parsed.database) throw new DatabaseUrlError("has no database name");
    const params: Record<string, string> = {};
    for (const [key, value] of query) if (!IN_SETTINGS.includes(key)) params[key] = value;
    const port = Number(query.get("port") || parsed.port || 5432);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DatabaseUrlError("has an invalid port");
    return {
        host,
        port,
        user: parsed.user,
        password: parsed.password || undefined,
        database: parsed.database,
        ...(Object.keys(params).length > 0 ? { params } : {}),
    };
}

/** The libpq environment (PGHOST, PGPASSWORD, PGSSLMODE, …) for client tools. */
export function libpqEnvironment(settings: LibpqSettings): Record<string, string> {
    const env: Record<string, string> = {
        PGHOST: settings.host,
        PGPORT: String(settings.port),
        PGUSER: settings.user,
        PGDATABASE: settings.database,
    };
    for (const [key, value] of Object.entries(settings.params ?? {})) {
        if (LIBPQ_ENVIRONMENT[key]) env[LIBPQ_ENVIRONMENT[key]] = value;
    }
    if (settings.password !== undefined) env.PGPASSWORD = settings.password;
    return env;
}

/** `pg`'s ssl setting for the URL's sslmode, as libpq reads it (prefer: pg has no fallback, so plain). */
export function pgSsl(settings: LibpqSettings): boolean | { rejectUnauthorized: boolean; ca?: string } {
    const mode = settings.params?.sslmode ?? "prefer";
    if (mode === "disable" || mode === "allow" || mode === "prefer") return false;
    const ca = settings.params?.sslrootcert ? fs.readFileSync(settings.params.sslrootcert, "utf8") : undefined;
    // require checks nothing about the certificate; verify-ca/verify-full check it.
    return { rejectUnauthorized: mode === "verify-ca" || mode === "verify-full", ...(ca ? { ca } : {}) };
}
