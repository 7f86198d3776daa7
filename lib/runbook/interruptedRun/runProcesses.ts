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
/** A 0600 file where the run's steps note, in order, what the state cannot show: a pause that started, a resume that ran. */
export const RUN_RECORD_VARIABLE = "PROTEA_ROLLOUT_RUN_RECORD";

export type WritersEvent = "writers-pause-started" | "writers-resumed";

/** For the guard of this run, if there is one: the writers' pause started, or they were resumed (by the Resume step or a failing step). */
export function noteWritersEvent(event: WritersEvent, env: NodeJS.ProcessEnv = process.env): void {
    const file = env[RUN_RECORD_VARIABLE];
    if (!file) return;
    try {
        fs.appendFileSync(file, `${event}\n`, { mode: 0o600 });
    } catch {
        // The guard then decides from the state alone.
    }
}

/** The run's last note about the writers in `file`, if any. */
export function lastWritersEvent(file: string): WritersEvent | undefined {
    try {
        return fs.readFileSync(file, "utf8").trim().split("\n").filter((l): l is WritersEvent => l === "writers-pause-started" || l === "writers-resumed").pop();
    } catch {
        return undefined;
    }
}

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
