/** Flag parsing shared by the operator CLIs in bin/. */

/** Reads `--name value` pairs and bare `--flag`s; unknown names are an error. */
export function parseFlags(argv: string[], known: Record<string, "value" | "flag">, usage: string): Record<string, string | boolean> {
    const flags: Record<string, string | boolean> = {};
    for (let i = 0; i < argv.length; i++) {
        const name = argv[i].replace(/^--/, "");
        if (argv[i] === "--help" || argv[i] === "-h") {
            process.stdout.write(`${usage}\n`);
            process.exit(0);
        }
        if (!argv[i].startsWith("--") || !(name in known)) throw new Error(`unknown argument "${argv[i]}"\n\n${usage}`);
        if (known[name] === "flag") {
            flags[name] = true;
        } else {
            const value = argv[++i];
            if (value === undefined || value.startsWith("--")) throw new Error(`--${name} needs a value\n\n${usage}`);
            flags[name] = value;
        }
    }
    return flags;
}
