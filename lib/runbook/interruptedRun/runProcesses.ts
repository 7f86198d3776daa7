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
/** A 0600 file where the run's steps note what they did that the state cannot show (a step that failed resumed the writers). */
export const RUN_RECORD_VARIABLE = "PROTEA_ROLLOUT_RUN_RECORD";
const STEP_RESUMED = "writers resumed by a step";

/** For the guard of this run, if there is one: a step resumed the writers itself when it failed or was stopped. */
export function noteStepResumedWriters(env: NodeJS.ProcessEnv = process.env): void {
    const file = env[RUN_RECORD_VARIABLE];
    if (!file) return;
    try {
        fs.appendFileSync(file, `${STEP_RESUMED}\n`, { mode: 0o600 });
    } catch {
        // The guard then resumes them once more; rollout:resumeWriters is safe to repeat.
    }
}

/** Whether a step of the run noted in `file` resumed the writers. */
export function stepResumedWriters(file: string): boolean {
    try {
        return fs.readFileSync(file, "utf8").includes(STEP_RESUMED);
    } catch {
        return false;
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
