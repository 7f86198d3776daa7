/**
 * Whether the state shows writers a run paused and never resumed. The pause
 * (`protea:rollout:Quiesce`'s command) and the resume (`protea:rollout:Resume`'s)
 * carry their run's re-run token in their stdin (components/types.ts rerunOn):
 * a pause whose token is newer than the resume's was not followed by one. Read from the state alone, so any
 * operator's checkout decides the same, and the next run or `recover` can act.
 */

interface StateResource {
    urn: string;
    type: string;
    inputs?: { stdin?: unknown };
}

interface PendingEntry {
    type?: string;
    resource?: { urn?: string };
}

export type WritersState =
    /** The last pause was followed by a resume of the same run, or nothing was ever paused. */
    | "not-paused"
    /** A pause ran and no resume of the same run followed. */
    | "paused"
    /** The run was interrupted while pausing or resuming: they may be either. */
    | "unknown";

const PAUSE = "protea:rollout:Quiesce$command:local:Command::";
const RESUME = "protea:rollout:Resume$command:local:Command::";

/**
 * Whether the resume's token is the pause's, or newer: a finished rollout
 * whose Resume step was created later (after an interrupted run) carries a
 * later run's token than its kept pause. Tokens end in the run's ISO time
 * (lib/runbook/rolloutPhase.ts rerunsFor).
 */
function resumedAfter(pause: string | undefined, resume: string | undefined): boolean {
    if (pause === undefined || resume === undefined) return false;
    if (pause === resume) return true;
    const time = (t: string) => Date.parse(t.split(" ").pop() ?? "");
    return !Number.isNaN(time(pause)) && !Number.isNaN(time(resume)) && time(resume) >= time(pause);
}

/** The stdin token of a command, whether stored plain or as a secret envelope. */
function token(resource: StateResource | undefined): string | undefined {
    const stdin = resource?.inputs?.stdin as unknown;
    if (typeof stdin === "string") return stdin;
    const wrapped = stdin as { plaintext?: string } | undefined;
    return typeof wrapped?.plaintext === "string" ? (JSON.parse(wrapped.plaintext) as string) : undefined;
}

/** The stack output that records writers resumed outside an update: `{ pause: <the pause's token>, by, at }`. */
export const RESUMED_OUTPUT = "writersResumed";

type Deployment = { resources?: unknown[] | null; pending_operations?: unknown[] | null } | undefined;

/** The re-run token of the last pause the state records, if any. */
export function pauseToken(deployment: Deployment): string | undefined {
    return token(((deployment?.resources ?? []) as StateResource[]).find((r) => r.urn.includes(PAUSE)));
}

/** `deployment` is `pulumi stack export`'s `deployment` (secrets shown or not: the tokens are plain). */
export function writersState(deployment: Deployment): WritersState {
    const resources = (deployment?.resources ?? []) as StateResource[];
    const pending = (deployment?.pending_operations ?? []) as PendingEntry[];
    if (pending.some((op) => op.resource?.urn?.includes(PAUSE) || op.resource?.urn?.includes(RESUME))) return "unknown";
    const pause = resources.find((r) => r.urn.includes(PAUSE));
    if (!pause) return "not-paused";
    const resume = resources.find((r) => r.urn.includes(RESUME));
    if (resume && resumedAfter(token(pause), token(resume))) return "not-paused";
    // Resumed after the run, by the guard of `npm run pulumi -- up` or by recover.
    const root = resources.find((r) => r.type === "pulumi:pulumi:Stack") as { outputs?: Record<string, { pause?: string } | undefined> } | undefined;
    return root?.outputs?.[RESUMED_OUTPUT]?.pause === token(pause) ? "not-paused" : "paused";
}
