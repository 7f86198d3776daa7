/**
 * What "nothing changed" and "back to where it was" mean for a database: its
 * schema as pg_dump prints it, and a checksum of every row of every table.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ClientConfig } from "pg";
import { queryRows, queryScalar } from "./db";

export interface DatabaseSnapshot {
    schema: string;
    rowChecksums: Record<string, string>;
}

/** `pgDump`: how to run pg_dump against the database (the host's with `libpqEnv`, or `docker exec … pg_dump`). */
export async function snapshotDatabase(clientConfig: ClientConfig, libpqEnv: Record<string, string>, pgDump: string[] = ["pg_dump"]): Promise<DatabaseSnapshot> {
    const [program, ...args] = pgDump;
    const schema = execFileSync(program, [...args, "--schema-only", "--no-owner", "--no-privileges"], { env: { ...process.env, ...libpqEnv }, encoding: "utf8" })
        .split("\n")
        // Dropped: comments and blank lines; the random \restrict key newer
        // pg_dump prints; and the comment on schema public, which the runbook's
        // restore (DROP SCHEMA public; CREATE SCHEMA public) does not carry over.
        .filter((line) => line.trim() !== "" && !line.startsWith("--") && !/^\\(un)?restrict /.test(line) && !line.startsWith("COMMENT ON SCHEMA public "))
        .join("\n");
    const tables = await queryRows<{ name: string }>(clientConfig, "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    const rowChecksums: Record<string, string> = {};
    for (const { name } of tables) {
        const quoted = `"${name.replace(/"/g, '""')}"`;
        rowChecksums[name] = String(await queryScalar(clientConfig, `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM ${quoted} t`));
    }
    return { schema, rowChecksums };
}

export function filesIn(dir: string): string[] {
    return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

/**
 * Samples the process list while a step runs, looking for a secret in any
 * process's arguments. Returns how many samples were taken and every hit.
 */
export function watchProcessList(secret: string, everyMs = 50): () => { samples: number; hits: string[] } {
    let samples = 0;
    const hits: string[] = [];
    const timer = setInterval(() => {
        const listing = execFileSync("ps", ["-eww", "-o", "args="], { encoding: "utf8" });
        samples++;
        for (const line of listing.split("\n")) if (line.includes(secret)) hits.push(line);
    }, everyMs);
    return () => {
        clearInterval(timer);
        return { samples, hits };
    };
}

/** A digest of every file's path, size and content below `dir`: are its files as they were? */
export function treeDigest(dir: string): string {
    const hash = createHash("sha256");
    const walk = (d: string) => {
        for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            const full = path.join(d, entry.name);
            if (entry.isDirectory()) walk(full);
            else if (entry.isFile()) hash.update(`${path.relative(dir, full)}\0${fs.statSync(full).size}\0`).update(fs.readFileSync(full));
        }
    };
    walk(dir);
    return hash.digest("hex");
}
