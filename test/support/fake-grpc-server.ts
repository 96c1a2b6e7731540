// A bare HTTP/2 server that speaks just enough gRPC to answer every call
// with one status (trailers-only), or never to answer at all. It stands in
// for a replica that is failing in a known way, so a test can see what a
// client does next, and it records each call's request headers.

import { once } from "node:events";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

export type FakeBehaviour = { status: number; message?: string } | "hang";

export class FakeGrpcServer {
  /** The request headers of every call, in arrival order. */
  readonly calls: http2.IncomingHttpHeaders[] = [];
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  private constructor(
    private readonly server: http2.Http2Server,
    public behaviour: FakeBehaviour,
  ) {
    server.on("session", (session) => {
      this.sessions.add(session);
      session.on("close", () => this.sessions.delete(session));
      session.on("error", () => {});
    });
    server.on("stream", (stream, headers) => {
      this.calls.push(headers);
      stream.on("error", () => {});
      const b = this.behaviour;
      if (b === "hang") return;
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": String(b.status),
          "grpc-message": encodeURIComponent(b.message ?? "fake"),
        },
        { endStream: true },
      );
    });
  }

  static async start(behaviour: FakeBehaviour): Promise<FakeGrpcServer> {
    const server = http2.createServer();
    server.on("sessionError", () => {});
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return new FakeGrpcServer(server, behaviour);
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Calls whose path ends with `method`. */
  callsTo(method: string): number {
    return this.calls.filter((h) => String(h[":path"]).endsWith(`/${method}`)).length;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.destroy();
    await closed;
  }
}
