/**
 * Where PostgreSQL's client tools run. `docker-exec` runs them inside the
 * database container, as the runbook does (`docker exec protea-postgres-1
 * pg_dump -U protea …`), so their version matches the server's; `url` runs the
 * host's tools with libpq settings from the environment (the password in
 * PGPASSWORD, never in an argument).
 */
import type { PgAccess } from "./config";
import { libpqEnvironment, LibpqSettings } from "./databaseUrl";

export interface ClientToolTarget {
    access: PgAccess;
    container: string;
    dbUser: string;
    dbName: string;
    database: LibpqSettings;
}

export interface ToolInvocation {
    program: string;
    args: string[];
    /** Extra environment (libpq settings in `url` mode). */
    env: Record<string, string>;
}

/**
 * `tool` with `args`, run against the target database. `stdinFromHost` adds
 * `-i` for docker exec, so a file on the host can be fed to the tool.
 */
export function clientTool(target: ClientToolTarget, tool: "pg_dump" | "pg_restore" | "psql", args: string[], stdinFromHost = false): ToolInvocation {
    if (target.access === "docker-exec") {
        const dbArgs = tool === "pg_restore" && args.includes("--list") ? [] : ["-U", target.dbUser, "-d", target.dbName];
        return {
            program: "docker",
            args: ["exec", ...(stdinFromHost ? ["-i"] : []), target.container, tool, ...dbArgs, ...args],
            env: {},
        };
    }
    const env = libpqEnvironment(target.database);
    const dbArgs = tool === "pg_restore" && !args.includes("--list") ? ["-d", target.database.database] : [];
    return { program: tool, args: [...dbArgs, ...args], env };
}
