/** TCP ports on 127.0.0.1: a free one for a server about to start, and whether one still has a listener. */
import * as net from "node:net";

/** Finds a TCP port on 127.0.0.1 that nobody listens on right now. */
export function findFreePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.unref();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

/** True while something accepts connections on 127.0.0.1:`port` (a connect that hangs counts as listening). */
export function isListening(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect({ host: "127.0.0.1", port });
        socket.setTimeout(2_000, () => {
            socket.destroy();
            resolve(true);
        });
        socket.once("connect", () => {
            socket.destroy();
            resolve(true);
        });
        socket.once("error", () => resolve(false));
    });
}
