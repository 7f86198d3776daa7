/** rollout:dbPasswordFile: the database password kept in a file of its own, never in the URL or the state. */
import * as fs from "node:fs";
import { resolveSetting } from "./config";
import { PROJECT_ROOT } from "../process/projectRoot";

/**
 * Reads rollout:dbPasswordFile (resolved against this checkout). Like libpq's
 * .pgpass, a file others can read is refused.
 */
export function readPasswordFile(setting: string): string {
    const file = resolveSetting(setting, PROJECT_ROOT);
    let stat: fs.Stats;
    try {
        stat = fs.statSync(file);
    } catch {
        throw new Error(`rollout:dbPasswordFile: ${file} does not exist`);
    }
    if ((stat.mode & 0o077) !== 0) throw new Error(`rollout:dbPasswordFile: ${file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`);
    const password = fs.readFileSync(file, "utf8").replace(/\r?\n$/, "");
    if (!password) throw new Error(`rollout:dbPasswordFile: ${file} is empty`);
    return password;
}
