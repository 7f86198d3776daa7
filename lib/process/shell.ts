/**
 * Builds shell command lines. Every argument is single-quoted, so no value
 * from config can change the command's meaning. Operator-supplied command
 * prefixes (`rollout:alembic`, `rollout:backfill`) are shell fragments by
 * design and are inserted as written.
 */

/** Quotes one argument for POSIX sh. */
export function quote(arg: string | number): string {
    const text = String(arg);
    if (/^[A-Za-z0-9_\/.,:=@%+-]+$/.test(text)) {
        return text;
    }
    return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A command line from a program and its arguments, each quoted. */
export function commandLine(program: string, ...args: (string | number)[]): string {
    return [program, ...args].map(quote).join(" ");
}

/** `cd <dir> && <command>`: runs an operator command in its checkout. */
export function inDirectory(dir: string, command: string): string {
    return `cd ${quote(dir)} && ${command}`;
}

/** Joins steps so that the first failure stops the rest. */
export function andThen(...steps: string[]): string {
    return steps.filter((step) => step.length > 0).join(" && ");
}

/**
 * Runs `command` and reports its wall time on stderr as `step <label> took
 * <n> ms`, keeping its exit status; the drill report reads these lines.
 */
export function timed(label: string, command: string): string {
    return `( t0=$(date +%s%N); ( ${command} ); rc=$?; echo "step ${label} took $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2; exit $rc )`;
}

/** The milliseconds a `timed` step reported in `stderr`, if it did. */
export function stepMillis(stderr: string, label: string): number | undefined {
    const match = new RegExp(`^step ${label} took (\\d+) ms$`, "m").exec(stderr);
    return match ? Number(match[1]) : undefined;
}
