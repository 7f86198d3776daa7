/**
 * Passwords for a cluster's roles: random ones, and the SCRAM-SHA-256 verifier
 * the server stores instead of the password itself.
 */
import * as crypto from "node:crypto";

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677),
 * so CREATE ROLE never carries the clear-text password to the server, its
 * logs or pg_stat_activity.
 */
export function scramSha256Verifier(password: string, iterations = 4096): string {
    if (!/^[\x20-\x7e]+$/.test(password)) {
        // SASLprep is the identity on printable ASCII (the ASCII space included); anything else would need a full implementation.
        throw new Error("password must be non-empty printable ASCII");
    }
    const salt = crypto.randomBytes(16);
    const saltedPassword = crypto.pbkdf2Sync(password, salt, iterations, 32, "sha256");
    const hmac = (key: Buffer, text: string) => crypto.createHmac("sha256", key).update(text).digest();
    const storedKey = crypto.createHash("sha256").update(hmac(saltedPassword, "Client Key")).digest();
    const serverKey = hmac(saltedPassword, "Server Key");
    return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** 32 random characters (base64url), for a role whose password nobody chose. */
export function generatePassword(): string {
    return crypto.randomBytes(24).toString("base64url");
}
