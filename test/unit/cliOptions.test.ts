import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { cliCommandsHelp, cliHelp, cliSpec, CliUsageError, parseCli, wrapText } from "../../lib/process/cliOptions";

const ROOT = path.resolve(__dirname, "../..");

const CLI = cliSpec({
    usage: "npm run example --",
    description: `Does the example thing to a stack, and says what it did. This paragraph is long
enough to be wrapped again at the help's width.

A second paragraph.`,
    options: {
        stack: { type: "string", value: "NAME", required: true, description: "the stack to act on" },
        dump: { type: "string", value: "FILE", description: "the dump to read" },
        timeout: { type: "string", value: "D", default: "4h", description: "how long it may run (rollout:stepTimeout)" },
        label: { type: "string", default: "rollout", description: "the file name prefix" },
        yes: { type: "boolean", description: "do not ask; required when there is no terminal to ask on, which is a long enough description to wrap" },
    },
});

/** The message of the CliUsageError that parsing `argv` throws. */
function usageError(argv: string[]): string {
    try {
        parseCli(argv, CLI);
    } catch (err) {
        expect(err).toBeInstanceOf(CliUsageError);
        return (err as Error).message;
    }
    throw new Error(`${argv.join(" ")} parsed`);
}

describe("cliOptions: the help made from a flag table", () => {
    const help = cliHelp(CLI);

    it("has the command line, the description, then one aligned line per flag and -h, --help", () => {
        const lines = help.split("\n");
        expect(lines[0]).toBe("usage: npm run example -- --stack NAME [--dump FILE] [--timeout D]");
        expect(lines[1]).toBe("                          [--label VALUE] [--yes]");
        expect(help).toContain("Does the example thing to a stack");
        expect(help).toContain("\n\nA second paragraph.\n\n");
        const flagLines = lines.filter((l) => /^ {2}-/.test(l));
        expect(flagLines.map((l) => l.trim().split(/\s{2,}/)[0])).toEqual(["--stack NAME", "--dump FILE", "--timeout D", "--label VALUE", "--yes", "-h, --help"]);
        // Every description starts in the same column.
        const columns = flagLines.map((l) => l.search(/\S\s{2,}\S/) + l.slice(l.search(/\S\s{2,}\S/) + 1).search(/\S/) + 1);
        expect(new Set(columns).size).toBe(1);
        expect(help.indexOf("usage:")).toBeLessThan(help.indexOf("Does the example")); // command line, then the description
        expect(help.indexOf("A second paragraph.")).toBeLessThan(help.indexOf("--stack NAME  "));
    });

    it("shows each default, inside a description's closing parenthesis when there is one", () => {
        expect(help).toContain("the file name prefix (default: rollout)");
        expect(help).toMatch(/how long it may run\s+\(rollout:stepTimeout;\s+default: 4h\)/);
    });

    it("wraps at 80 columns, continuation lines under the description", () => {
        expect(help.split("\n").every((l) => l.length <= 80)).toBe(true);
        const yes = help.split("\n").findIndex((l) => l.trimStart().startsWith("--yes"));
        const next = help.split("\n")[yes + 1];
        expect(next.search(/\S/)).toBe(help.split("\n")[yes].indexOf("do not ask"));
    });

    it("says [options] on the command line past four optional flags", () => {
        const many = cliSpec({ usage: "npm run drill --", options: { ...CLI.options, keep: { type: "boolean", description: "k" } } });
        expect(cliHelp(many).split("\n")[0]).toBe("usage: npm run drill -- --stack NAME [options]");
        expect(cliHelp(many)).toMatch(/\n {2}--keep {2,}k\n/);
    });

    it("lists each subcommand with its description's first paragraph and all its flags", () => {
        const top = cliCommandsHelp("tool <command> [options]", "What the tool is.", { run: CLI, stop: cliSpec({ usage: "tool stop", description: "stops it", options: {} }) });
        expect(top).toMatch(/^usage: tool <command> \[options\]\n\nWhat the tool is\.\n\ncommands/);
        expect(top).toMatch(/\n {2}run {3}Does the example thing/);
        expect(top).not.toContain("A second paragraph");
        expect(top).toContain("\n          --stack NAME [--dump FILE] [--timeout D] [--label VALUE] [--yes]\n");
        expect(top).toMatch(/\n {2}stop {2}stops it$/);
    });

    it("wrapText keeps words whole and honours line breaks", () => {
        expect(wrapText("aaa bbb ccc", 7)).toEqual(["aaa bbb", "ccc"]);
        expect(wrapText("averyveryverylongword b", 5)).toEqual(["averyveryverylongword", "b"]);
        expect(wrapText("one\ntwo", 80)).toEqual(["one", "two"]);
    });
});

describe("cliOptions: reading a command line with util.parseArgs", () => {
    it("gives strings, booleans (false when absent) and defaults", () => {
        expect(parseCli(["--stack", "prod"], CLI)).toEqual({ stack: "prod", dump: undefined, timeout: "4h", label: "rollout", yes: false });
        expect(parseCli(["--yes", "--stack=prod", "--timeout", "90s", "--dump", "a.dump", "--label", ""], CLI)).toEqual({ stack: "prod", dump: "a.dump", timeout: "90s", label: "", yes: true });
    });

    it("returns help for --help or -h, wherever it is", () => {
        expect(parseCli(["--help"], CLI)).toBe("help");
        expect(parseCli(["--stack", "prod", "-h"], CLI)).toBe("help");
        expect(parseCli(["--bogus", "--help"], CLI)).toBe("help");
    });

    it("refuses an unknown flag, naming it, followed by the help", () => {
        const message = usageError(["--stack", "prod", "--bogus"]);
        expect(message).toMatch(/^unknown argument "--bogus"\n\nusage: npm run example/);
        expect(message).toContain("--stack NAME");
        expect(usageError(["-x", "--stack", "prod"])).toMatch(/^unknown argument "-x"/);
        expect(usageError(["--stack", "prod", "extra"])).toMatch(/^unknown argument "extra"/);
        expect(usageError(["--stack", "prod", "--", "x"])).toMatch(/^unknown argument "--"/);
        expect(usageError(["--toString"])).toMatch(/^unknown argument "--toString"/);
    });

    it("refuses a string flag without its value, also when another flag follows", () => {
        expect(usageError(["--stack"])).toMatch(/^--stack needs a value\n\nusage:/);
        expect(usageError(["--stack", "--yes"])).toMatch(/^--stack needs a value/);
        expect(usageError(["--stack", "prod", "--dump", "-x"])).toMatch(/^--dump needs a value/);
        // A value that starts with a dash goes in with "=".
        expect(parseCli(["--stack", "prod", "--dump=-x"], CLI)).toMatchObject({ dump: "-x" });
    });

    it("refuses a value given to a boolean flag", () => {
        expect(usageError(["--stack", "prod", "--yes=no"])).toMatch(/^--yes takes no value/);
    });

    it("refuses a required flag left out or given empty, naming it", () => {
        expect(usageError([])).toMatch(/^--stack is required\n\nusage: npm run example/);
        expect(usageError(["--stack", ""])).toMatch(/^--stack is required/);
        expect(usageError(["--yes"])).toMatch(/^--stack is required/);
    });
});

describe("the CLIs' help and errors (ts-node)", () => {
    const run = (script: string, args: string[]) =>
        spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", script, ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, PROTEA_PROFILE_LOG: "" } });

    it("rollout: the subcommands' help, and an unknown flag", () => {
        const top = run("bin/rollout.ts", ["--help"]);
        expect(top.status).toBe(0);
        for (const command of ["preflight", "backup", "migrate", "backfill", "writers", "verify-schema", "verify-backfill", "probe", "rehearsal-report"]) {
            expect(top.stdout).toMatch(new RegExp(`\\n  ${command} +\\S`));
        }
        const migrate = run("bin/rollout.ts", ["migrate", "--help"]);
        expect(migrate.status).toBe(0);
        expect(migrate.stdout).toMatch(/^usage: rollout migrate --direction up\|down\|check --stack NAME/);
        for (const flag of ["--lock-budget D", "--budget-step STEP", "--resume-on-failure true|false", "--version-table T"]) expect(migrate.stdout).toContain(flag);
        const bogus = run("bin/rollout.ts", ["writers", "--action", "pause", "--command", "true", "--bogus"]);
        expect(bogus.status).toBe(1);
        expect(bogus.stderr).toMatch(/^rollout: unknown argument "--bogus"\n\nusage: rollout writers/);
    }, 60_000);

    it("rollback: --help, and --stack required", () => {
        const help = run("bin/rollback.ts", ["-h"]);
        expect(help.status).toBe(0);
        expect(help.stdout).toMatch(/^usage: npm run rollback -- --stack NAME \[--yes\] \[--preview\]/);
        const missing = run("bin/rollback.ts", ["--yes"]);
        expect(missing.status).toBe(1);
        expect(missing.stderr).toMatch(/^rollback: --stack is required\n/);
    }, 60_000);
});
