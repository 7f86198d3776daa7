import * as net from "node:net";

/** Whether something accepts connections on 127.0.0.1:`port` (a server left running after a teardown). */
export function listening(port: number): Promise<boolean> {
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
