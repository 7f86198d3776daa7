import { describe, expect, it } from "vitest";
import { libpqEnvironment, parseDatabaseUrl, sqlalchemyUrl } from "../../lib/config/databaseUrl";

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
        expect(parseDatabaseUrl(sqlalchemyUrl(socket))).toEqual(socket);
        const tls = parseDatabaseUrl("postgresql://u:pw@db:5432/d?sslmode=require&options=-c%20statement_timeout%3D5s&application_name=x");
        expect(libpqEnvironment(tls)).toMatchObject({ PGSSLMODE: "require", PGOPTIONS: "-c statement_timeout=5s", PGAPPNAME: "x" });
        expect(sqlalchemyUrl(tls)).toContain("sslmode=require");
        expect(parseDatabaseUrl(sqlalchemyUrl(tls))).toEqual(tls);
    });

    it("round-trips through sqlalchemyUrl", () => {
        const settings = parseDatabaseUrl("postgresql://u:p%20q@127.0.0.1/d");
        expect(parseDatabaseUrl(sqlalchemyUrl(settings))).toEqual({ ...settings, port: 5432 });
    });

    it("explains what is missing without echoing the URL", () => {
        expect(() => parseDatabaseUrl("postgresql+psycopg://secretpw@host/")).toThrow(/has no database name/);
        expect(() => parseDatabaseUrl("not a url")).toThrow(/rollout:dbUrl: is not a URL/);
        // It must throw, and the message must not carry the password.
        expect(() => parseDatabaseUrl("redis://u:hunter22@h/0")).toThrow(/scheme "redis" is not a PostgreSQL URL/);
        expect(() => parseDatabaseUrl("redis://u:hunter22@h/0")).not.toThrow(/hunter22/);
    });
});
