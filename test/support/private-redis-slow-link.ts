// A TCP proxy that delays every byte from clients to one Redis server by a
// fixed time, in order: a slower network path to one node, for tests of what
// may overtake what when commands go to different nodes.

import { once } from "node:events";
import { createServer, connect, type Server, type Socket } from "node:net";
import { linkSockets } from "./linked-sockets.js";

export class SlowLink {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly port: number,
  ) {}

  static async start(targetPort: number, delayMs: number): Promise<SlowLink> {
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const upstream = connect(targetPort, "127.0.0.1");
      linkSockets(client, upstream, sockets);
      // Equal delays keep the order: timers of one duration fire first in, first out.
      client.on("data", (chunk) => setTimeout(() => upstream.write(chunk), delayMs));
      upstream.pipe(client);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return new SlowLink(server, sockets, (server.address() as { port: number }).port);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
