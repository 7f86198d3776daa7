import { describe, expect, it } from "vitest";
import { writersState } from "../../lib/runbook/interruptedRun/pausedWriters";

const PAUSE = "urn:pulumi:prod::rollout::protea:rollout:Quiesce$command:local:Command::quiesce-pause";
const RESUME = "urn:pulumi:prod::rollout::protea:rollout:Resume$command:local:Command::resume-writers";
const command = (urn: string, stdin: unknown) => ({ urn, type: "command:local:Command", inputs: { stdin } });

describe("whether the state shows writers left paused", () => {
    it("a pause followed by a resume of the same run: not paused", () => {
        expect(writersState({ resources: [command(PAUSE, "rerun pending 1"), command(RESUME, "rerun pending 1")] })).toBe("not-paused");
    });

    it("a pause with no resume, or a resume of an earlier run: paused", () => {
        expect(writersState({ resources: [command(PAUSE, "rerun pending 1")] })).toBe("paused");
        expect(writersState({ resources: [command(PAUSE, "rerun incomplete 2"), command(RESUME, "rerun pending 1")] })).toBe("paused");
    });

    it("reads a token stored as a secret envelope", () => {
        const secret = (v: string) => ({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify(v) });
        expect(writersState({ resources: [command(PAUSE, secret("t")), command(RESUME, secret("t"))] })).toBe("not-paused");
        expect(writersState({ resources: [command(PAUSE, secret("t2")), command(RESUME, secret("t"))] })).toBe("paused");
    });

    it("interrupted while pausing or resuming: unknown; nothing ever paused: not paused", () => {
        expect(writersState({ resources: [], pending_operations: [{ type: "creating", resource: { urn: PAUSE } }] })).toBe("unknown");
        expect(writersState({ resources: [command(PAUSE, "a"), command(RESUME, "a")], pending_operations: [{ type: "updating", resource: { urn: RESUME } }] })).toBe("unknown");
        expect(writersState({ resources: [] })).toBe("not-paused");
        expect(writersState(undefined)).toBe("not-paused");
    });

    it("a pause resumed after the run (the guard, recover) and recorded in the stack's outputs: not paused; an older record does not count", () => {
        const root = (pause: string) => ({ urn: "urn:pulumi:prod::rollout::pulumi:pulumi:Stack::rollout-prod", type: "pulumi:pulumi:Stack", outputs: { writersResumed: { pause, by: "recover", at: "t" } } });
        expect(writersState({ resources: [root("rerun incomplete 2"), command(PAUSE, "rerun incomplete 2"), command(RESUME, "rerun pending 1")] })).toBe("not-paused");
        expect(writersState({ resources: [root("rerun pending 1"), command(PAUSE, "rerun incomplete 2"), command(RESUME, "rerun pending 1")] })).toBe("paused");
    });

    it("orders runs by the time in their tokens: a resume created by a later run than its kept pause follows it", () => {
        const at = (phase: string, iso: string) => `rerun ${phase} ${iso}`;
        expect(writersState({ resources: [command(PAUSE, at("incomplete", "2026-12-07T21:00:00.000Z")), command(RESUME, at("complete", "2026-12-07T21:05:00.000Z"))] })).toBe("not-paused");
        expect(writersState({ resources: [command(PAUSE, at("incomplete", "2026-12-07T21:05:00.000Z")), command(RESUME, at("pending", "2026-12-07T21:00:00.000Z"))] })).toBe("paused");
    });
});
