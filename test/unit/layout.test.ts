/**
 * lib/'s rooms, lowest first: a file may import from its own room or a lower
 * one, never from a higher room, components/ or bin/ (README "Layout").
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const LIB = path.join(ROOT, "lib");
const ROOMS = ["process", "config", "postgres", "runbook", "preview", "drill"];
const FORBIDDEN = ["components", "bin"];

// import … from "x", export … from "x", import "x", import("x"), require("x").
const SPECIFIER = /(?:\bfrom\s*|^\s*import\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)(["'])([^"'\n]+)\1/gm;

/** What `file` (absolute, under lib/) imports against the rule, one line each. */
function violations(file: string, source: string, root = ROOT): string[] {
    const lib = path.join(root, "lib");
    const name = path.relative(root, file);
    const [room, ...rest] = path.relative(lib, file).split(path.sep);
    if (rest.length === 0 || !ROOMS.includes(room)) return [`${name}: not in a room (${ROOMS.join(", ")})`];
    const found: string[] = [];
    for (const match of source.matchAll(SPECIFIER)) {
        const spec = match[2];
        if (!spec.startsWith(".")) continue;
        const target = path.relative(root, path.resolve(path.dirname(file), spec)).split(path.sep);
        if (FORBIDDEN.includes(target[0])) found.push(`${name} imports "${spec}": lib/ never imports from ${target[0]}/`);
        else if (target[0] !== "lib") found.push(`${name} imports "${spec}": outside lib/`);
        else if (!ROOMS.includes(target[1]) || target.length < 3) found.push(`${name} imports "${spec}": not in a room of lib/`);
        else if (ROOMS.indexOf(target[1]) > ROOMS.indexOf(room)) found.push(`${name} imports "${spec}": ${target[1]}/ is above ${room}/`);
    }
    return found;
}

function tsFiles(dir: string): string[] {
    return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith(".ts"))
        .map((e) => path.join(e.parentPath, e.name))
        .sort();
}

describe("lib layout", () => {
    it("imports only from its own room or a lower one, never components/ or bin/", () => {
        const files = tsFiles(LIB);
        expect(files.length).toBeGreaterThan(30);
        expect(files.flatMap((f) => violations(f, fs.readFileSync(f, "utf8")))).toEqual([]);
    });

    it("names the file and the import of a violation", () => {
        const file = path.join(LIB, "config", "x.ts");
        const source = `import { a } from "../runbook/y";\nimport type { B } from "../../components/z";\nimport { c } from "./w";\nconst d = await import("../process/v");\n`;
        expect(violations(file, source)).toEqual([
            `lib/config/x.ts imports "../runbook/y": runbook/ is above config/`,
            `lib/config/x.ts imports "../../components/z": lib/ never imports from components/`,
        ]);
        expect(violations(path.join(LIB, "x.ts"), "")).toEqual([`lib/x.ts: not in a room (${ROOMS.join(", ")})`]);
    });
});
