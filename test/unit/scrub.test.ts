import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { scrub, secretForms } from "../../lib/process/scrub";

// Every URL and shell metacharacter, a space, a backtick and a backslash.
const PASSWORD = `p@ss:/?#%&'"$; x\`\\y`;

describe("the one scrubber", () => {
    it("removes the password as written, percent-encoded by every common encoder, and escaped in a string literal", () => {
        const encodings = [
            PASSWORD,
            encodeURIComponent(PASSWORD),
            encodeURIComponent(PASSWORD).toLowerCase(),
            // Python's quote_plus; SQLAlchemy 2.0.58's render_as_string (read off it); SQLAlchemy 1.4's (only : @ / encoded).
            "p%40ss%3A%2F%3F%23%25%26%27%22%24%3B+x%60%5Cy",
            "p%40ss%3A%2F%3F%23%25%26%27%22%24%3B x%60%5Cy",
            "p%40ss%3A%2F?#%&'\"$; x`\\y",
            JSON.stringify(PASSWORD).slice(1, -1),
            PASSWORD.replace(/\\/g, "\\\\").replace(/'/g, "\\'"),
        ];
        const forms = secretForms(PASSWORD);
        for (const printed of encodings) {
            const out = scrub(`error: connecting with ${printed} failed`, forms);
            expect(out, printed).toBe("error: connecting with [secret] failed");
        }
    });

    it("removes any URL's userinfo and libpq's password=, whatever the password", () => {
        expect(scrub("postgresql+psycopg2://app:hunter22@db:5432/x", [])).toBe("postgresql+psycopg2://[redacted]@db:5432/x");
        expect(scrub("dsn: host=db password='a b\\'c' dbname=x", [])).toBe("dsn: host=db password=[redacted] dbname=x");
        expect(scrub("password=hunter22 user=x", [])).toBe("password=[redacted] user=x");
    });

    it("sits in front of a process's stdout and stderr once installed: no write passes it", () => {
        const program = `
            const { installOutputScrubber, secretForms } = require(${JSON.stringify(path.resolve(__dirname, "../../lib/process/scrub.ts"))});
            installOutputScrubber(secretForms(process.env.PW));
            process.stdout.write("out " + encodeURIComponent(process.env.PW) + "\\n");
            console.error("err " + process.env.PW);
            process.stderr.write(Buffer.from("buf " + process.env.PW + "\\n"));
        `;
        const result = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", program], { env: { ...process.env, PW: PASSWORD }, encoding: "utf8" });
        expect(result.status, result.stderr).toBe(0);
        expect(result.stdout).toBe("out [secret]\n");
        expect(result.stderr).toBe("err [secret]\nbuf [secret]\n");
    });
});
