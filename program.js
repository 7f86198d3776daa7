// The program's entry (package.json "main"; Pulumi.yaml sets typescript: false).
// It runs index.ts compiled by scripts/build-tools.sh (.state/tools), which
// starts about a second sooner than index.ts through ts-node; whenever that
// build is missing or older than any source of the program, it runs index.ts
// through ts-node instead, so an edited or newly checked-out program never
// runs stale.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = __dirname;
const built = path.join(root, ".state", "tools");

/** When the build read its sources (the marker is written before compiling), or 0. */
function buildTime() {
    try {
        if (!fs.existsSync(path.join(built, ".complete"))) return 0;
        return fs.statSync(path.join(built, ".sources-at")).mtimeMs;
    } catch {
        return 0;
    }
}

function newestSource() {
    let newest = 0;
    const consider = (file) => (newest = Math.max(newest, fs.statSync(file).mtimeMs));
    for (const file of ["index.ts", "tsconfig.json", "tsconfig.tools.json", "package-lock.json"]) consider(path.join(root, file));
    for (const dir of ["components", "lib"]) {
        for (const entry of fs.readdirSync(path.join(root, dir), { recursive: true })) {
            if (String(entry).endsWith(".ts")) consider(path.join(root, dir, String(entry)));
        }
    }
    return newest;
}

const compiledAt = buildTime();
if (compiledAt > 0 && newestSource() < compiledAt) {
    module.exports = require(path.join(built, "index.js"));
} else {
    require("ts-node").register({
        transpileOnly: process.env.PULUMI_NODEJS_TRANSPILE_ONLY !== "false",
        project: path.join(root, "tsconfig.json"),
    });
    module.exports = require(path.join(root, "index.ts"));
}
