/**
 * The one scrubber every line a product command prints goes through: the
 * password in every form an application or a library may print it (raw,
 * percent-encoded as URLs carry it, escaped inside a quoted string), the
 * userinfo of any URL, and libpq's `password=…`. installOutputScrubber()
 * puts it in front of this process's stdout and stderr, so no message,
 * error or child's output that passes through them can leak it.
 */

const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/@'"]+@/gi;
const CONNINFO_PASSWORD = /\bpassword\s*=\s*(?:'(?:[^'\\]|\\.)*'|[^\s'"]+)/gi;
/** Shorter values would scrub ordinary text: such a password is refused nowhere, but is not searched for. */
const MIN_SECRET = 3;

/** Removes every secret, every URL's userinfo and every conninfo password from `text`. */
export function scrub(text: string, secrets: readonly string[]): string {
    let out = text;
    // Longest first, so a form that contains another is replaced whole.
    for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
        if (secret.length >= MIN_SECRET) out = out.split(secret).join("[secret]");
    }
    return out.replace(URL_USERINFO, "$1[redacted]@").replace(CONNINFO_PASSWORD, "password=[redacted]");
}

const hex = (c: string, lower: boolean) =>
    [...Buffer.from(c, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).map((h) => (lower ? h : h.toUpperCase())).join("");

/** Percent-encodes every character outside `keep`. */
function percentEncode(text: string, keep: RegExp, lower: boolean, spaceAsPlus = false): string {
    return [...text].map((c) => (keep.test(c) ? c : spaceAsPlus && c === " " ? "+" : hex(c, lower))).join("");
}

/**
 * The forms a password takes in what programs print: as written; as
 * encodeURIComponent, Python's quote/quote_plus and SQLAlchemy's URL
 * rendering (2.x: all but a space; 1.4: only `:@/`) write it, in upper- and
 * lower-case hex;
 * inside a JSON, JavaScript or Python string literal; in a shell's
 * single quotes.
 */
export function secretForms(password: string | undefined): string[] {
    if (!password) return [];
    const forms = new Set<string>([password]);
    for (const lower of [false, true]) {
        forms.add(percentEncode(password, /[A-Za-z0-9\-_.!~*'()]/, lower)); // encodeURIComponent
        forms.add(percentEncode(password, /[A-Za-z0-9\-_.~]/, lower)); // quote(safe="")
        forms.add(percentEncode(password, /[A-Za-z0-9\-_.~/]/, lower)); // quote()
        forms.add(percentEncode(password, /[A-Za-z0-9\-_.~]/, lower, true)); // quote_plus()
        forms.add(percentEncode(password, /[A-Za-z0-9\-_.~ +]/, lower)); // SQLAlchemy 2's URL.render_as_string
        forms.add(percentEncode(password, /[^:@/]/, lower)); // SQLAlchemy 1.4's URL (only : @ / encoded)
    }
    forms.add(JSON.stringify(password).slice(1, -1));
    forms.add(password.replace(/\\/g, "\\\\").replace(/'/g, "\\'"));
    forms.add(password.replace(/'/g, `'\\''`));
    return [...forms];
}

type Write = typeof process.stdout.write;

let installed: { secrets: Set<string> } | undefined;

/**
 * Puts the scrubber in front of process.stdout and process.stderr; every
 * write is scrubbed of the secrets known so far. Idempotent: a second call
 * adds its secrets. Text only (a Buffer is decoded as UTF-8).
 */
export function installOutputScrubber(secrets: readonly string[] = []): void {
    if (!installed) {
        const state = { secrets: new Set<string>() };
        installed = state;
        for (const stream of [process.stdout, process.stderr]) {
            const original = stream.write.bind(stream) as Write;
            stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
                const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
                return (original as (c: string, ...r: unknown[]) => boolean)(scrub(text, [...state.secrets]), ...rest);
            }) as Write;
            // A closed terminal must not end the process that is cleaning up after an interruption.
            stream.on("error", () => undefined);
        }
    }
    for (const s of secrets) installed.secrets.add(s);
}
