import { describe, expect, it } from "vitest";
import { libpqEnvironment, parseDatabaseUrl } from "../../lib/config/databaseUrl";
import { applicationEnvironment, completedStepEnvironment, stepEnvironment } from "../../lib/postgres/database";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

describe("database URLs", () => {
    it("derives libpq settings from the SQLAlchemy URL, decoding escapes", () => {
        const settings = parseDatabaseUrl("postgresql+psycopg://app%40x:p%3Aw%2Fd@db.local:6543/protea");
        expect(settings).toEqual({ host: "db.local", port: 6543, user: "app@x", password: "p:w/d", database: "protea" });
        expect(libpqEnvironment(settings)).toEqual({ PGHOST: "db.local", PGPORT: "6543", PGUSER: "app@x", PGPASSWORD: "p:w/d", PGDATABASE: "protea" });
    });

    it("keeps every libpq parameter: a Unix socket as ?host=, sslmode and options reach the client tools and the application's URL", () => {
        const socket = parseDatabaseUrl("postgresql+psycopg://protea:pw@/protea?host=/var/run/postgresql&port=5433");
        expect(socket).toMatchObject({ host: "/var/run/postgresql", port: 5433, user: "protea", database: "protea" });
        expect(libpqEnvironment(socket).PGHOST).toBe("/var/run/postgresql");
        const tls = parseDatabaseUrl("postgresql://u:pw@db:5432/d?sslmode=require&options=-c%20statement_timeout%3D5s&application_name=x");
        expect(libpqEnvironment(tls)).toMatchObject({ PGSSLMODE: "require", PGOPTIONS: "-c statement_timeout=5s", PGAPPNAME: "x" });
        expect(tls.params).toMatchObject({ sslmode: "require", application_name: "x" });
    });

    it("reads ssl parameters without pg's SECURITY WARNING and without opening their files", () => {
        const warnings: string[] = [];
        const onWarning = (w: Error) => warnings.push(w.message);
        process.on("warning", onWarning);
        try {
            const settings = parseDatabaseUrl("postgresql://u:pw@db/d?sslmode=require&sslrootcert=/nonexistent/root.crt");
            expect(settings.params).toEqual({ sslmode: "require", sslrootcert: "/nonexistent/root.crt" });
        } finally {
            process.off("warning", onWarning);
        }
        expect(warnings).toEqual([]);
    });

    it("gives the application the URL exactly as configured (driver, parameters, encoding), in its own variable only", () => {
        const url = "postgresql+psycopg2://u:p%40%3A%2F%3F%23%25%26%27%22%24%3B%20%60%5C@127.0.0.1:5/d?sslmode=disable&application_name=billing";
        const env = applicationEnvironment({ PATH: "/bin", ...stepEnvironment({ dbUrlEnv: "BILLING_DATABASE_URL" }, url) }, { PGOPTIONS: "-c x=1" });
        expect(env).toEqual({ PATH: "/bin", BILLING_DATABASE_URL: url, PGOPTIONS: "-c x=1" });
        // The default variable: PROTEA_DB_URL, and nothing added to a stored command's environment.
        expect(stepEnvironment({ dbUrlEnv: "PROTEA_DB_URL" }, url)).toEqual({ PROTEA_DB_URL: url });
        expect(applicationEnvironment({ ...stepEnvironment({ dbUrlEnv: "PROTEA_DB_URL" }, url) })).toEqual({ PROTEA_DB_URL: url });
        // Applied twice, the same.
        expect(applicationEnvironment(env)).toEqual(env);
    });

    it("puts a password file's password into the URL percent-encoded, whatever it holds", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pwfile-"));
        const file = path.join(dir, "pw");
        const password = `p@ss:/?#%&'"$; \`\\x`;
        fs.writeFileSync(file, `${password}\n`, { mode: 0o600 });
        try {
            const env = completedStepEnvironment({ dbUrlEnv: "DATABASE_URL", dbPasswordFile: file }, "postgresql+psycopg2://u@127.0.0.1:5/d", {});
            const app = applicationEnvironment(env);
            expect(parseDatabaseUrl(app.DATABASE_URL!).password).toBe(password);
            expect(app.DATABASE_URL!.startsWith("postgresql+psycopg2://u:")).toBe(true);
        } finally {
            fs.rmSync(dir, { recursive: true });
        }
    });

    it("explains what is missing without echoing the URL", () => {
        expect(() => parseDatabaseUrl("postgresql+psycopg://secretpw@host/")).toThrow(/has no database name/);
        expect(() => parseDatabaseUrl("not a url")).toThrow(/rollout:dbUrl: is not a URL/);
        // It must throw, and the message must not carry the password.
        expect(() => parseDatabaseUrl("redis://u:hunter22@h/0")).toThrow(/scheme "redis" is not a PostgreSQL URL/);
        expect(() => parseDatabaseUrl("redis://u:hunter22@h/0")).not.toThrow(/hunter22/);
    });
});
