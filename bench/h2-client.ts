// A minimal gRPC-over-HTTP/2 unary client on node:http2. It is the Node load
// generator: far cheaper per call than a full gRPC client, so on two cores it
// leaves as much CPU as possible to the service under test.

import * as http2 from "node:http2";

export interface GrpcReply {
  /** grpc-status from the trailers (or the headers, for a trailers-only reply). */
  status: number;
  message: string;
  body: Buffer;
}

export class H2GrpcClient {
  private next = 0;

  private constructor(private readonly sessions: http2.ClientHttp2Session[]) {}

  /** Opens `connections` HTTP/2 connections; calls are spread over them round-robin. */
  static async connect(baseUrl: string, connections: number): Promise<H2GrpcClient> {
    const sessions = await Promise.all(
      Array.from(
        { length: connections },
        () =>
          new Promise<http2.ClientHttp2Session>((resolve, reject) => {
            const session = http2.connect(baseUrl);
            session.once("connect", () => {
              session.off("error", reject);
              session.on("error", () => {});
              resolve(session);
            });
            session.once("error", reject);
          }),
      ),
    );
    return new H2GrpcClient(sessions);
  }

  call(path: string, frame: Buffer, headers: Readonly<Record<string, string>>): Promise<GrpcReply> {
    const session = this.sessions[this.next++ % this.sessions.length]!;
    return new Promise((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
      const chunks: Buffer[] = [];
      let status: number | undefined;
      let message = "";
      const onStatus = (h: http2.IncomingHttpHeaders) => {
        const s = h["grpc-status"];
        if (s !== undefined) {
          status = Number(s);
          message = decodeURIComponent(String(h["grpc-message"] ?? ""));
        }
      };
      stream.on("response", (h) => {
        if (h[":status"] !== 200) reject(new Error(`HTTP status ${h[":status"]}`));
        onStatus(h);
      });
      stream.on("trailers", onStatus);
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", reject);
      stream.on("end", () => {
        if (status === undefined) reject(new Error("reply has no grpc-status"));
        else resolve({ status, message, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      });
      stream.end(frame);
    });
  }

  close(): void {
    for (const s of this.sessions) s.close();
  }
}
