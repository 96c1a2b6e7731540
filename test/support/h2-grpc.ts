// gRPC over a bare node:http2 client session, for tests that must control the
// connection itself: several calls on one session, a body that never comes,
// an oversized body, pings in between.

import * as http2 from "node:http2";

export interface H2GrpcResult {
  /** grpc-status from trailers (or a trailers-only response); undefined when the stream was reset. */
  status: number | undefined;
  message: string | undefined;
  /** RST_STREAM code when the stream ended without a status. */
  rstCode: number | undefined;
  /** Messages received (length prefix removed). */
  messages: Buffer[];
}

export function grpcFrame(message: Uint8Array): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

export function connectH2(port: number): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  return session;
}

/**
 * Opens a gRPC stream on `session` and resolves once it ends with a status or
 * a reset. `body` undefined sends headers only and leaves the request open.
 */
export function h2Grpc(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer | undefined,
  headers: http2.OutgoingHttpHeaders = {},
): { stream: http2.ClientHttp2Stream; done: Promise<H2GrpcResult> } {
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    ...headers,
  });
  const result: H2GrpcResult = { status: undefined, message: undefined, rstCode: undefined, messages: [] };
  let pending = Buffer.alloc(0);
  const readStatus = (h: http2.IncomingHttpHeaders) => {
    if (h["grpc-status"] !== undefined) result.status = Number(h["grpc-status"]);
    if (typeof h["grpc-message"] === "string") result.message = decodeURIComponent(h["grpc-message"]);
  };
  stream.on("response", readStatus);
  stream.on("trailers", readStatus);
  stream.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const length = pending.readUInt32BE(1);
      result.messages.push(pending.subarray(5, 5 + length));
      pending = pending.subarray(5 + length);
    }
  });
  stream.on("error", () => {});
  const done = new Promise<H2GrpcResult>((resolve) => {
    stream.on("close", () => {
      if (result.status === undefined) result.rstCode = stream.rstCode;
      resolve(result);
    });
  });
  if (body !== undefined) stream.end(body);
  return { stream, done };
}

/** Resolves with the value, or rejects after `ms` with `what` in the message. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
