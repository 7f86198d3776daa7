/**
 * The processes of one `pulumi up`, found by a run id in their environment:
 * the CLI passes its environment to the language host and the providers,
 * the command provider to each step, each step to what it runs. So whatever
 * an interrupted run left behind (a step whose provider was killed, an
 * application command whose step was) carries the id, whichever provider ran it.
 */
import * as fs from "node:fs";
import { readProcess, type ProcessEntry } from "./processTable";

/** The variable that carries a run's id (bin/guardedUp.ts sets it on `pulumi up`). */
export const RUN_ID_VARIABLE = "PROTEA_ROLLOUT_RUN";

/** Every process whose environment holds `RUN_ID_VARIABLE=<runId>`, but this one. */
export function processesOfRun(runId: string): ProcessEntry[] {
    const marker = `${RUN_ID_VARIABLE}=${runId}`;
    const found: ProcessEntry[] = [];
    for (const name of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
        let environ: string;
        try {
            environ = fs.readFileSync(`/proc/${name}/environ`, "utf8");
        } catch {
            continue; // gone, or not ours to read
        }
        if (!environ.split("\0").includes(marker)) continue;
        const entry = readProcess(Number(name));
        if (entry && entry.state !== "Z") found.push(entry);
    }
    return found;
}
