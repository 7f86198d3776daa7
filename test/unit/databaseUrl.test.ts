import { describe, expect, it } from "vitest";
import { libpqEnvironment, parseDatabaseUrl, sqlalchemyUrl } from "../../lib/databaseUrl";

describe("database URLs", () => {
    it("derives libpq settings from the SQLAlchemy URL, decoding escapes", () => {
        const settings = parseDatabaseUrl("postgresql+psycopg://app%40x:p%3Aw%2Fd@db.local:6543/protea");
        expect(settings).toEqual({ host: "db.local", port: 6543, user: "app@x", password: "p:w/d", database: "protea" });
        expect(libpqEnvironment(settings)).toEqual({ PGHOST: "db.local", PGPORT: "6543", PGUSER: "app@x", PGPASSWORD: "p:w/d", PGDATABASE: "protea" });
    });

    it("round-trips through sqlalchemyUrl", () => {
        const settings = parseDatabaseUrl("postgresql://u:p%20q@127.0.0.1/d");
        expect(parseDatabaseUrl(sqlalchemyUrl(settings))).toEqual({ ...settings, port: 5432 });
    });

    it("explains what is missing without echoing the URL", () => {
        expect(() => parseDatabaseUrl("postgresql+psycopg://secretpw@host/")).toThrow(/has no database name/);
        expect(() => parseDatabaseUrl("not a url")).toThrow(/rollout:dbUrl: is not a URL/);
        try {
            parseDatabaseUrl("redis://u:hunter22@h/0");
        } catch (err) {
            expect((err as Error).message).not.toContain("hunter22");
        }
    });
});
