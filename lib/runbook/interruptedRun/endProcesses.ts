/** Ending processes with all they started: SIGTERM children first, SIGKILL after a grace period, never a reused pid. */
import { isPulumiCli, ProcessEntry, readProcess, readProcessTable } from "./processTable";

/** A pid, or a process found earlier: its start time guards against pid reuse. */
export type ProcessRef = number | { pid: number; startTicks?: number };

export interface EndedProcess {
    pid: number;
    program: string;
    /**
     * `SIGTERM`: ended within the grace period; `SIGKILL`: had to be killed;
     * `already-gone`: not running (or the pid now belongs to another process);
     * `survived`: still there after SIGKILL (e.g. in uninterruptible I/O);
     * `not-permitted`: another user's process.
     */
    outcome: "SIGTERM" | "SIGKILL" | "already-gone" | "survived" | "not-permitted";
    /** Included because it descends from a requested pid. */
    descendant: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function isRunning(pid: number, startTicks: number): boolean {
    const p = readProcess(pid);
    return p !== null && p.startTicks === startTicks && p.state !== "Z";
}

function signal(pid: number, sig: NodeJS.Signals): "ok" | "gone" | "not-permitted" {
    try {
        process.kill(pid, sig);
        return "ok";
    } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM" ? "not-permitted" : "gone";
    }
}

/**
 * Ends each process with everything it started: the trees are frozen
 * (SIGSTOP, parents first, so no shell starts its next command), sent
 * SIGTERM children first and resumed; what is still there after graceMs,
 * with anything it started meanwhile, is frozen again and SIGKILLed.
 * Signals go to single pids, not process groups, because a group may hold
 * processes outside the tree. A pid whose start time changed since it was
 * found is left alone.
 */
export async function endProcesses(refs: ProcessRef[], graceMs = 5000): Promise<EndedProcess[]> {
    const results = new Map<number, EndedProcess>();
    const targets = new Map<number, ProcessEntry>(); // insertion order: parents before children
    const requested = new Set<number>();

    for (const ref of refs) {
        const pid = typeof ref === "number" ? ref : ref.pid;
        const expectedStart = typeof ref === "number" ? undefined : ref.startTicks;
        requested.add(pid);
        const p = readProcess(pid);
        if (!p || p.state === "Z" || (expectedStart !== undefined && p.startTicks !== expectedStart)) {
            results.set(pid, { pid, program: p?.program ?? "?", outcome: "already-gone", descendant: false });
            continue;
        }
        targets.set(pid, p);
    }

    // Freeze, then collect children until the tree stops growing.
    const frozen = new Set<number>();
    for (let round = 0; round < 10; round++) {
        let grew = false;
        for (const [pid, p] of targets) {
            if (frozen.has(pid)) continue;
            const sent = signal(pid, "SIGSTOP");
            frozen.add(pid);
            if (sent === "not-permitted") results.set(pid, { pid, program: p.program, outcome: "not-permitted", descendant: !requested.has(pid) });
        }
        for (const p of readProcessTable()) {
            // A nested pulumi CLI is another run: leave its tree alone.
            if (!targets.has(p.pid) && targets.has(p.ppid) && p.state !== "Z" && p.pid !== process.pid && !isPulumiCli(p)) {
                targets.set(p.pid, p);
                grew = true;
            }
        }
        if (!grew) break;
    }

    const live = [...targets.values()].filter((p) => !results.has(p.pid));
    const childrenFirst = [...live].reverse();
    for (const p of childrenFirst) signal(p.pid, "SIGTERM");
    for (const p of childrenFirst) signal(p.pid, "SIGCONT");

    const deadline = Date.now() + graceMs;
    let remaining = live.filter((p) => isRunning(p.pid, p.startTicks));
    while (remaining.length > 0 && Date.now() < deadline) {
        await sleep(Math.min(100, Math.max(1, deadline - Date.now())));
        remaining = remaining.filter((p) => isRunning(p.pid, p.startTicks));
    }
    for (const p of live) {
        if (!remaining.includes(p)) results.set(p.pid, { pid: p.pid, program: p.program, outcome: "SIGTERM", descendant: !requested.has(p.pid) });
    }

    // A survivor that ignores SIGTERM may have started its next command
    // meanwhile: freeze the survivors and take in their new children too.
    for (const p of remaining) signal(p.pid, "SIGSTOP");
    for (let round = 0, grew = true; grew && round < 10; round++) {
        grew = false;
        const inTree = new Set(remaining.map((p) => p.pid));
        for (const p of readProcessTable()) {
            if (!inTree.has(p.pid) && inTree.has(p.ppid) && p.state !== "Z" && p.pid !== process.pid && !isPulumiCli(p)) {
                signal(p.pid, "SIGSTOP");
                remaining.push(p);
                grew = true;
            }
        }
    }
    for (const p of [...remaining].reverse()) signal(p.pid, "SIGKILL");
    const killDeadline = Date.now() + 2000;
    let survivors = remaining.filter((p) => isRunning(p.pid, p.startTicks));
    while (survivors.length > 0 && Date.now() < killDeadline) {
        await sleep(50);
        survivors = survivors.filter((p) => isRunning(p.pid, p.startTicks));
    }
    for (const p of remaining) {
        results.set(p.pid, { pid: p.pid, program: p.program, outcome: survivors.includes(p) ? "survived" : "SIGKILL", descendant: !requested.has(p.pid) });
    }
    return [...results.values()].sort((a, b) => a.pid - b.pid);
}
