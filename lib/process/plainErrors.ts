/**
 * The Pulumi SDK formats an uncaught program error with util.inspect, which
 * on Node 20 spins for a minute and more, then fails, on a stack frame under
 * node_modules/ (it marks those frames in colour): a failed `up` would print
 * its error that much later. Installed first, this strips such frames from
 * every uncaught error before the SDK's own handlers see it; the message and
 * the program's own frames stay.
 */
export function reportProgramErrorsPlainly(): void {
    const plain = (err: unknown) => {
        if (err instanceof Error && err.stack) err.stack = withoutDependencyFrames(err.stack);
    };
    process.prependListener("uncaughtException", plain);
    process.prependListener("unhandledRejection", plain);
}

/** A stack without the frames of node_modules/. */
export function withoutDependencyFrames(stack: string): string {
    return stack
        .split("\n")
        .filter((line) => !/^\s+at .*node_modules[\\/]/.test(line))
        .join("\n");
}
