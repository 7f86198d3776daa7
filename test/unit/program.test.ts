/**
 * program.js runs the compiled program only while it is current: a source of
 * the program saved after the build (an edit, a checkout, a pull) sends it
 * back to index.ts through ts-node, so a stale build never runs.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
let dir: string | undefined;

/** A project with program.js, an index.ts that says "source" and a build whose index.js says "compiled". */
function project(): string {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "protea-program-"));
    fs.copyFileSync(path.join(ROOT, "program.js"), path.join(dir, "program.js"));
    for (const file of ["tsconfig.json", "tsconfig.tools.json", "package-lock.json"]) fs.writeFileSync(path.join(dir, file), file.endsWith(".json") && file.startsWith("tsconfig") ? '{ "compilerOptions": { "module": "commonjs" } }\n' : "{}\n");
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    fs.mkdirSync(path.join(dir, "components"));
    fs.mkdirSync(path.join(dir, "lib", "postgres"), { recursive: true });
    fs.writeFileSync(path.join(dir, "components", "a.ts"), "export {};\n");
    fs.writeFileSync(path.join(dir, "lib", "postgres", "b.ts"), "export {};\n");
    fs.writeFileSync(path.join(dir, "index.ts"), 'export const runs: string = "source";\n');
    const build = path.join(dir, ".state", "tools-1");
    fs.mkdirSync(build, { recursive: true });
    fs.writeFileSync(path.join(build, ".sources-at"), "");
    fs.writeFileSync(path.join(build, "index.js"), 'exports.runs = "compiled";\n');
    fs.writeFileSync(path.join(build, ".complete"), "");
    fs.symlinkSync("tools-1", path.join(dir, ".state", "tools"));
    return dir;
}

function runs(projectDir: string): string {
    const result = spawnSync(process.execPath, ["-e", `process.stdout.write(require(${JSON.stringify(path.join(projectDir, "program.js"))}).runs)`], { encoding: "utf8" });
    expect(result.status, result.stderr).toBe(0);
    return result.stdout;
}

/** Makes `file` newer than the build's marker. */
function touchAfterBuild(projectDir: string, file: string): void {
    const marker = fs.statSync(path.join(projectDir, ".state", "tools", ".sources-at")).mtime;
    const later = new Date(marker.getTime() + 5000);
    fs.utimesSync(path.join(projectDir, file), later, later);
}

afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
});

describe("program.js", () => {
    it("runs the build while no source is newer than it", () => {
        const p = project();
        const earlier = new Date(Date.now() - 60_000);
        for (const file of ["index.ts", "components/a.ts", "lib/postgres/b.ts", "tsconfig.json", "tsconfig.tools.json", "package-lock.json"]) fs.utimesSync(path.join(p, file), earlier, earlier);
        expect(runs(p)).toBe("compiled");
    });

    it.each(["index.ts", "components/a.ts", "lib/postgres/b.ts", "tsconfig.json"])("runs index.ts through ts-node once %s is newer than the build", (file) => {
        const p = project();
        touchAfterBuild(p, file);
        expect(runs(p)).toBe("source");
    });

    it("runs index.ts through ts-node when the build is missing or unfinished", () => {
        const p = project();
        fs.rmSync(path.join(p, ".state", "tools", ".complete"));
        expect(runs(p)).toBe("source");
        fs.rmSync(path.join(p, ".state"), { recursive: true });
        expect(runs(p)).toBe("source");
    });
});
