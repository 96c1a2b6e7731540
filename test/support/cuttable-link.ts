// A TCP proxy in front of one server that a test can cut and heal: a network
// cut (or a proxy restart) between the service and Redis, while Redis itself
// keeps running and keeps its data. A cut resets every connection through the
// link, so whatever was in flight on them is lost, and resets every new one
// until the link heals. A frozen server (SIGSTOP) would not do: the commands
// sent to it wait in its socket buffers and all run when it resumes, which is
// not what a client sees when the path to the server is broken.

import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { linkSockets } from "./linked-sockets.js";

export class CuttableLink {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    private readonly state: { cut: boolean },
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<CuttableLink> {
    const sockets = new Set<Socket>();
    const state = { cut: false };
    const server = createServer((client) => {
      client.on("error", () => {});
      if (state.cut) {
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(targetPort, "127.0.0.1");
      linkSockets(client, upstream, sockets);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return new CuttableLink(server, sockets, state, (server.address() as { port: number }).port);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Resets every connection through the link; new ones are reset until `heal()`. */
  cut(): void {
    this.state.cut = true;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
  }

  /** Lets connections through again; returns performance.now() at that moment. */
  heal(): number {
    this.state.cut = false;
    return performance.now();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
