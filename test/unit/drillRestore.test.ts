import { describe, expect, it } from "vitest";
import { drillRestoreCommand, restoreMaintenanceMemoryMiB, restoreSessionOptions } from "../../lib/drill/drillRestore";

const GiB = 2 ** 30;
const database = { host: "127.0.0.1", port: 5433, user: "protea", password: "placeholder-pw", database: "protea" };

describe("the drill's restore", () => {
    it("sizes maintenance_work_mem from the machine's memory and the jobs, between 64MB and 1GB", () => {
        expect(restoreMaintenanceMemoryMiB(2, 24 * GiB)).toBe(1024);
        expect(restoreMaintenanceMemoryMiB(2, 4 * GiB)).toBe(512);
        expect(restoreMaintenanceMemoryMiB(4, 1 * GiB)).toBe(64);
        expect(restoreMaintenanceMemoryMiB(0, 8 * GiB)).toBe(1024);
    });

    it("passes its session settings first, so an operator's PGOPTIONS still wins", () => {
        expect(restoreSessionOptions(2, undefined, 24 * GiB)).toBe("-c maintenance_work_mem=1024MB -c work_mem=256MB");
        expect(restoreSessionOptions(2, " -c work_mem=8MB ", 24 * GiB)).toBe("-c maintenance_work_mem=1024MB -c work_mem=256MB -c work_mem=8MB");
    });

    it("runs pg_restore -j N from the file, without ownership, the password in the environment only", () => {
        const { program, args, env } = drillRestoreCommand({ database, dump: "/backups/prod.dump", jobs: 3 }, { PATH: "/usr/bin" });
        expect(program).toBe("pg_restore");
        expect(args).toEqual(["-j", "3", "--no-owner", "-d", "protea", "/backups/prod.dump"]);
        expect(args.join(" ")).not.toContain("placeholder-pw");
        expect(env).toMatchObject({ PATH: "/usr/bin", PGHOST: "127.0.0.1", PGPORT: "5433", PGPASSWORD: "placeholder-pw" });
        expect(env.PGOPTIONS).toMatch(/^-c maintenance_work_mem=\d+MB -c work_mem=\d+MB$/);
    });
});
