/**
 * The flags of the operator CLIs (bin/) and the benchmarks (bench/), read
 * with node's `util.parseArgs` from one table per command: each flag's type,
 * what it does, its value's name, its default, whether it is required. The
 * `--help` text is made from the same table, so the two never disagree.
 */
import { parseArgs } from "node:util";

/** One flag of a command, `--<name>` in its table. */
export interface CliOption {
    /** "string": `--name VALUE`; "boolean": a bare `--name`. */
    readonly type: "string" | "boolean";
    /** What it does, for the help (wrapped there; "\n" starts a new line). */
    readonly description: string;
    /** The value's name in the help: `--stack NAME` (default VALUE). */
    readonly value?: string;
    /** A string flag's value when it is not given; the help shows it. */
    readonly default?: string;
    /** Missing, or given as "", is an error naming the flag. */
    readonly required?: boolean;
}

export type CliOptions = Readonly<Record<string, CliOption>>;

export interface CliSpec<O extends CliOptions = CliOptions> {
    /** How the command is run, before its flags: "npm run rollback --", "rollout migrate". */
    readonly usage: string;
    /** What it does: paragraphs (blank-line separated) printed as written, between the command line and the flags. */
    readonly description?: string;
    readonly options: O;
}

type ValueOf<T extends CliOption> = CliOption extends T ? string | boolean | undefined : T["type"] extends "boolean" ? boolean : T extends { required: true } ? string : T extends { default: string } ? string : string | undefined;

/** The flags' values: booleans are false when absent; strings are their default, or undefined. */
export type CliValues<O extends CliOptions> = { -readonly [K in keyof O]: ValueOf<O[K]> };

/** A command line that does not fit the table; the message names the flag and ends with the help. */
export class CliUsageError extends Error {}

/** A table with its literal types kept, so {@link parseCli}'s values are typed per flag. */
export function cliSpec<const O extends CliOptions>(spec: CliSpec<O>): CliSpec<O> {
    return spec;
}

const WIDTH = 80;
const HELP_FLAG = "-h, --help";
/** Past this many optional flags, the command line says `[options]` instead of naming them. */
const OPTIONAL_IN_USAGE = 4;

const flagText = (name: string, option: CliOption) => (option.type === "string" ? `--${name} ${option.value ?? "VALUE"}` : `--${name}`);

/** `text` in lines of at most `width` characters (a longer word stays whole); a "\n" in it starts a new line. */
export function wrapText(text: string, width: number): string[] {
    const lines: string[] = [];
    for (const paragraph of text.split("\n")) {
        let line = "";
        for (const word of paragraph.split(/\s+/).filter(Boolean)) {
            if (line !== "" && line.length + 1 + word.length > width) {
                lines.push(line);
                line = word;
            } else {
                line = line === "" ? word : `${line} ${word}`;
            }
        }
        lines.push(line);
    }
    return lines;
}

/** `text` wrapped to the help's width after a `column`-wide left part, further lines indented to that column. */
const hanging = (column: number, text: string) => wrapText(text, WIDTH - column).join(`\n${" ".repeat(column)}`);

/** The flags as a command line shows them: `--required VALUE [--optional VALUE]…`; `[options]` past a few optional ones, unless `all`. */
function synopsis(options: CliOptions, all = false): string[] {
    const entries = Object.entries(options);
    const required = entries.filter(([, o]) => o.required).map(([name, o]) => flagText(name, o));
    const optional = entries.filter(([, o]) => !o.required);
    return [...required, ...(optional.length > OPTIONAL_IN_USAGE && !all ? ["[options]"] : optional.map(([name, o]) => `[${flagText(name, o)}]`))];
}

/** `head` then `words` (a flag and its value stay together), wrapped to the help's width, further lines indented by `indent`. */
function commandLine(head: string, words: string[], indent: number): string {
    const lines = [head];
    for (const word of words) {
        const last = lines[lines.length - 1];
        if (last.trim() !== head.trim() && last.length + 1 + word.length > WIDTH) lines.push(`${" ".repeat(indent)}${word}`);
        else lines[lines.length - 1] = `${last} ${word}`;
    }
    return lines.join("\n");
}

/** The flag's description, its default added: "… (default: 4h)", or "… (rollout:stepTimeout; default: 4h)" after a parenthesis. */
function withDefault(option: CliOption): string {
    if (option.default === undefined) return option.description;
    const shown = option.default === "" ? '""' : option.default;
    return option.description.endsWith(")") ? `${option.description.slice(0, -1)}; default: ${shown})` : `${option.description} (default: ${shown})`;
}

/** One aligned line per flag (its description wrapped under itself), `-h, --help` last. */
function flagLines(options: CliOptions): string {
    const rows = Object.entries(options).map(([name, o]) => [flagText(name, o), withDefault(o)]);
    rows.push([HELP_FLAG, "this text"]);
    const column = Math.max(...rows.map(([flag]) => flag.length)) + 4;
    return rows.map(([flag, text]) => `  ${flag.padEnd(column - 2)}${hanging(column, text)}`).join("\n");
}

/** Description paragraphs (blank-line separated) wrapped to the help's width; one with indented lines stays as written. */
function paragraphs(text: string | undefined): string[] {
    if (!text?.trim()) return [];
    const kept = text.replace(/^\n+|\s+$/g, "").split(/\n[ \t]*\n/);
    return [kept.map((p) => (/^[ \t]/m.test(p) ? p : wrapText(p.replace(/\s*\n\s*/g, " "), WIDTH).join("\n"))).join("\n\n")];
}

/** The `--help` text: the command line, the description, then one aligned line per flag. */
export function cliHelp(spec: CliSpec): string {
    const head = `usage: ${spec.usage}`;
    return [commandLine(head, synopsis(spec.options), head.length < 40 ? head.length + 1 : 4), ...paragraphs(spec.description), flagLines(spec.options)].join("\n\n");
}

/**
 * The help of a command with subcommands: its command line, the description,
 * then each subcommand with the first paragraph of its own description and
 * all its flags (`<command> --help` gives the whole of its help).
 */
export function cliCommandsHelp(usage: string, description: string | undefined, commands: Readonly<Record<string, CliSpec>>): string {
    const column = Math.max(...Object.keys(commands).map((name) => name.length)) + 4;
    const entries = Object.entries(commands).map(([name, spec]) => {
        const summary = (spec.description ?? "").trim().split(/\n\s*\n/)[0];
        const flags = synopsis(spec.options, true);
        return `  ${name.padEnd(column - 2)}${hanging(column, summary.replace(/\s*\n\s*/g, " "))}${flags.length > 0 ? `\n${commandLine(" ".repeat(column + 1), flags, column + 2)}` : ""}`;
    });
    return [`usage: ${usage}`, ...paragraphs(description), `commands (<command> --help: its whole help):\n${entries.join("\n")}`].join("\n\n");
}

/**
 * Reads `argv` against the table with `util.parseArgs`: `--name VALUE` or
 * `--name=VALUE` for a string flag, a bare `--name` for a boolean one.
 * Returns "help" for `--help`/`-h`; anything else the table does not know, a
 * string flag without its value (or followed by another flag), a boolean
 * given a value and a required flag left out are a {@link CliUsageError}
 * that names the flag, followed by the help.
 */
export function parseCli<O extends CliOptions>(argv: readonly string[], spec: CliSpec<O>): CliValues<O> | "help" {
    const options = Object.fromEntries(Object.entries(spec.options).map(([name, o]) => [name, { type: o.type }]));
    // Not strict: the tokens are checked here, so each error names the flag in this project's words.
    const { values, tokens } = parseArgs({ args: [...argv], options: { ...options, help: { type: "boolean", short: "h" } }, strict: false, allowPositionals: true, tokens: true });
    const usageError = (message: string) => new CliUsageError(`${message}\n\n${cliHelp(spec)}`);
    if (tokens.some((t) => t.kind === "option" && t.name === "help")) return "help";
    for (const token of tokens) {
        if (token.kind === "positional") throw usageError(`unknown argument "${token.value}"`);
        if (token.kind === "option-terminator") throw usageError('unknown argument "--"');
        if (token.kind !== "option") continue;
        const option = Object.hasOwn(spec.options, token.name) ? spec.options[token.name] : undefined;
        if (!option || !token.rawName.startsWith("--")) throw usageError(`unknown argument "${token.rawName}"`);
        if (option.type === "boolean" && token.value !== undefined) throw usageError(`${token.rawName} takes no value`);
        // As parseArgs' strict mode: a value that looks like a flag is a forgotten value; --name=-x passes one.
        if (option.type === "string" && (token.value === undefined || (!token.inlineValue && token.value.length > 1 && token.value.startsWith("-")))) throw usageError(`${token.rawName} needs a value`);
    }
    const result: Record<string, string | boolean | undefined> = {};
    for (const [name, option] of Object.entries(spec.options)) {
        const value = values[name];
        if (option.type === "boolean") {
            result[name] = value === true;
            continue;
        }
        if (option.required && (value === undefined || value === "")) throw usageError(`--${name} is required`);
        result[name] = typeof value === "string" ? value : option.default;
    }
    return result as CliValues<O>;
}

/** {@link parseCli} for a command's main(): `--help` prints the help on stdout and exits 0. */
export function readCli<O extends CliOptions>(argv: readonly string[], spec: CliSpec<O>): CliValues<O> {
    const values = parseCli(argv, spec);
    if (values === "help") {
        process.stdout.write(`${cliHelp(spec)}\n`);
        process.exit(0);
    }
    return values;
}
