/** A free TCP port on 127.0.0.1, for a server this process is about to start. */
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
