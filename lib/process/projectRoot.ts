import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The project's root: the nearest folder above this module with a Pulumi.yaml.
 * Found, not assumed, because the CLIs also run compiled from .state/tools.
 */
function findProjectRoot(start: string): string {
    for (let dir = start; ; dir = path.dirname(dir)) {
        if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) return dir;
        if (path.dirname(dir) === dir) throw new Error(`no Pulumi.yaml above ${start}`);
    }
}

export const PROJECT_ROOT = findProjectRoot(__dirname);
