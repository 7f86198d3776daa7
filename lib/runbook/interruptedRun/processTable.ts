/** Processes as Linux's /proc shows them: one by pid, the whole table, a start time, and whether one is a pulumi CLI. */
import * as fs from "node:fs";
import * as path from "node:path";

/** One process as /proc shows it. argv may hold secrets: never print it. */
export interface ProcessEntry {
    pid: number;
    ppid: number;
    pgid: number;
    /** One-letter state (R, S, D, Z, T, …). */
    state: string;
    /** Start time in clock ticks since boot; with pid, identifies the process. */
    startTicks: number;
    argv: string[];
    /** basename of the executable (or argv[0] when /proc/<pid>/exe is unreadable). */
    program: string;
    /** null when unreadable (another user's process, or it just ended). */
    cwd: string | null;
}

export interface ProcStat {
    pid: number;
    comm: string;
    state: string;
    ppid: number;
    pgid: number;
    startTicks: number;
}

/** Parses /proc/<pid>/stat; comm may contain spaces and parentheses. */
export function parseProcStat(text: string): ProcStat {
    const open = text.indexOf("(");
    const close = text.lastIndexOf(")");
    if (open < 0 || close < open) throw new Error("not a /proc/<pid>/stat line");
    const rest = text.slice(close + 2).trim().split(/\s+/);
    // rest[0] is field 3 (state); starttime is field 22.
    const field = (n: number) => Number(rest[n - 3]);
    return {
        pid: Number(text.slice(0, open).trim()),
        comm: text.slice(open + 1, close),
        state: rest[0],
        ppid: field(4),
        pgid: field(5),
        startTicks: field(22),
    };
}

/** Linux reports /proc times in USER_HZ, 100 on every architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** When a process started, from its start ticks and the boot time; null when /proc/stat is unreadable. */
export function processStartDate(startTicks: number): Date | null {
    try {
        const btime = /^btime\s+(\d+)$/m.exec(fs.readFileSync("/proc/stat", "utf8"));
        if (!btime) return null;
        return new Date((Number(btime[1]) + startTicks / CLOCK_TICKS_PER_SECOND) * 1000);
    } catch {
        return null;
    }
}

function readLink(file: string): string | null {
    try {
        return fs.readlinkSync(file).replace(/ \(deleted\)$/, "");
    } catch {
        return null;
    }
}

/** One process from /proc, or null if it is gone (or a kernel thread). */
export function readProcess(pid: number): ProcessEntry | null {
    try {
        const stat = parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        if (argv[argv.length - 1] === "") argv.pop();
        if (argv.length === 0) return null; // kernel thread or zombie without argv
        const exe = readLink(`/proc/${pid}/exe`);
        return {
            pid,
            ppid: stat.ppid,
            pgid: stat.pgid,
            state: stat.state,
            startTicks: stat.startTicks,
            argv,
            program: path.basename(exe ?? argv[0]),
            cwd: readLink(`/proc/${pid}/cwd`),
        };
    } catch {
        return null;
    }
}

/** Every process visible in /proc (ones that end while reading are skipped). */
export function readProcessTable(): ProcessEntry[] {
    const table: ProcessEntry[] = [];
    for (const name of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(name)) continue;
        const entry = readProcess(Number(name));
        if (entry) table.push(entry);
    }
    return table;
}

/** Whether a process is the `pulumi` CLI (a run of its own, never an orphan). */
export function isPulumiCli(p: Pick<ProcessEntry, "program" | "argv">): boolean {
    return p.program === "pulumi" || path.basename(p.argv[0] ?? "") === "pulumi";
}
