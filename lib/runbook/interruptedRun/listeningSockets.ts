/** Listening TCP sockets as /proc/net/tcp and tcp6 show them, and whether something listens on a host:port. */
import * as fs from "node:fs";
import * as os from "node:os";

/** A TCP socket from /proc/net/tcp or tcp6. */
export interface TcpSocket {
    /** Dotted IPv4, or IPv6 text (`::1`, `::ffff:127.0.0.1`). */
    address: string;
    port: number;
    /** The kernel's state code: 0A is LISTEN, 01 ESTABLISHED. */
    state: string;
}

const TCP_LISTEN = "0A";

/**
 * Parses /proc/net/tcp or /proc/net/tcp6. Addresses are hex words in the
 * host's byte order (`0100007F:ADDC` is 127.0.0.1:44508 on little-endian).
 */
export function parseProcNetTcp(text: string, endianness: "LE" | "BE" = os.endianness()): TcpSocket[] {
    const sockets: TcpSocket[] = [];
    for (const line of text.split("\n").slice(1)) {
        const fields = line.trim().split(/\s+/);
        if (fields.length < 4) continue;
        const [addrHex, portHex] = fields[1].split(":");
        if (!portHex || !/^[0-9A-Fa-f]+$/.test(addrHex)) continue;
        sockets.push({ address: decodeProcAddress(addrHex, endianness), port: parseInt(portHex, 16), state: fields[3].toUpperCase() });
    }
    return sockets;
}

function decodeProcAddress(hex: string, endianness: "LE" | "BE"): string {
    const bytes: number[] = [];
    // Each 32-bit word is in host byte order.
    for (let w = 0; w < hex.length; w += 8) {
        const word = hex.slice(w, w + 8).match(/../g)!.map((b) => parseInt(b, 16));
        bytes.push(...(endianness === "LE" ? word.reverse() : word));
    }
    if (bytes.length === 4) return bytes.join(".");
    return formatIpv6(bytes);
}

function formatIpv6(bytes: number[]): string {
    const isV4Mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    if (isV4Mapped) return `::ffff:${bytes.slice(12).join(".")}`;
    const groups = [];
    for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
    // Compress the longest run of zero groups (RFC 5952).
    let bestStart = -1;
    let bestLength = 1;
    for (let i = 0; i < 8; ) {
        if (groups[i] !== "0") {
            i++;
            continue;
        }
        let j = i;
        while (j < 8 && groups[j] === "0") j++;
        if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
        i = j;
    }
    if (bestStart < 0) return groups.join(":");
    return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLength).join(":")}`;
}

/** The listening TCP sockets of this network namespace. */
export function listeningSockets(): TcpSocket[] {
    const sockets: TcpSocket[] = [];
    for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
        try {
            sockets.push(...parseProcNetTcp(fs.readFileSync(file, "utf8")));
        } catch {
            // No IPv6 in this kernel: tcp6 is missing.
        }
    }
    return sockets.filter((s) => s.state === TCP_LISTEN);
}

/**
 * Whether something listens on `host:port` (the engine's gRPC address). A
 * socket bound to the wildcard address also answers there.
 */
export function isListening(hostPort: string, sockets: TcpSocket[]): boolean {
    const parsed = splitHostPort(hostPort);
    if (!parsed) return false;
    const { host, port } = parsed;
    const loopback = host === "localhost";
    return sockets.some(
        (s) =>
            s.state === TCP_LISTEN &&
            s.port === port &&
            (s.address === host ||
                s.address === `::ffff:${host}` ||
                s.address === "0.0.0.0" ||
                s.address === "::" ||
                (loopback && (s.address.startsWith("127.") || s.address === "::1"))),
    );
}

function splitHostPort(hostPort: string): { host: string; port: number } | null {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(hostPort);
    if (!match) return null;
    return { host: (match[1] ?? match[2]).toLowerCase(), port: Number(match[3]) };
}
