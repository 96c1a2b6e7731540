// A minimal unary client on node:http2 for both protocols. It is the Node load
// generator: far cheaper per call than a full gRPC or Connect client, so on two
// cores it leaves as much CPU as possible to the server under test.

import * as http2 from "node:http2";
import { protocolHeaders, type Call } from "./calls.js";

export class H2Client {
  private next = 0;

  private constructor(private readonly sessions: http2.ClientHttp2Session[]) {}

  /** Opens `connections` HTTP/2 connections; calls are spread over them round-robin. */
  static async connect(url: string, connections: number): Promise<H2Client> {
    const open = () =>
      new Promise<http2.ClientHttp2Session>((resolve, reject) => {
        const session = http2.connect(url);
        session.once("connect", () => {
          session.off("error", reject);
          session.on("error", () => {});
          resolve(session);
        });
        session.once("error", reject);
      });
    return new H2Client(await Promise.all(Array.from({ length: connections }, open)));
  }

  /** The reply message (unframed); rejects on any status but OK. */
  call(c: Call): Promise<Uint8Array> {
    const session = this.sessions[this.next++ % this.sessions.length]!;
    return new Promise((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": c.path,
        ...protocolHeaders(c.protocol),
        ...c.headers,
      });
      const chunks: Buffer[] = [];
      let httpStatus = 0;
      let grpcStatus: string | undefined;
      let grpcMessage = "";
      const onGrpcStatus = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] === undefined) return;
        grpcStatus = String(h["grpc-status"]);
        grpcMessage = decodeURIComponent(String(h["grpc-message"] ?? ""));
      };
      stream.on("response", (h) => {
        httpStatus = Number(h[":status"]);
        onGrpcStatus(h);
      });
      stream.on("trailers", onGrpcStatus);
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", reject);
      stream.on("end", () => {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (c.protocol === "connect") {
          // A Connect unary reply is the bare message on 200, and a JSON error otherwise.
          if (httpStatus === 200) resolve(body);
          else reject(new Error(`HTTP ${httpStatus}: ${body.toString("utf8", 0, 200)}`));
          return;
        }
        if (httpStatus !== 200) reject(new Error(`HTTP ${httpStatus}`));
        else if (grpcStatus !== "0") reject(new Error(`grpc-status ${grpcStatus ?? "missing"}: ${grpcMessage}`));
        else if (body.length < 5 || body.readUInt8(0) !== 0 || body.readUInt32BE(1) !== body.length - 5)
          reject(new Error(`the reply is not one uncompressed gRPC message (${body.length} bytes)`));
        else resolve(body.subarray(5));
      });
      stream.end(c.body);
    });
  }

  close(): void {
    for (const s of this.sessions) s.close();
  }
}
