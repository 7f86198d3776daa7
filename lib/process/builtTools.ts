/**
 * Where scripts/build-tools.sh puts the compiled CLIs (.state/tools) and
 * their launchers (.state/tools/path, which scripts/engine-env.sh puts on
 * PATH), and whether they are there.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT } from "./projectRoot";

export const TOOLS_DIR = path.join(PROJECT_ROOT, ".state", "tools");
/** The launchers' folder, which scripts/engine-env.sh puts on PATH. */
export const TOOLS_PATH_DIR = path.join(TOOLS_DIR, "path");

/** An error message when the compiled CLIs are missing, else undefined. */
export function missingTools(): string | undefined {
    if (fs.existsSync(path.join(TOOLS_PATH_DIR, "protea-rollout"))) return undefined;
    return `the rollout's command-line tools are not built (${TOOLS_DIR}): run \`npm run setup\`; \`npm run pulumi\`, \`npm run drill\` and \`npm test\` build them too`;
}
