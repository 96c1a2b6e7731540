// Requests as an outside client sends them, byte for byte, over node:http2:
// gRPC frames with any envelope, flags and headers, and Connect requests
// (POST and GET). Nothing here knows the server's internals.

import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";

export interface RawResponse {
  /** HTTP status, or 0 when the stream ended without response headers. */
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** The RST_STREAM code the stream closed with (0 when it ended cleanly). */
  rstCode: number;
}

export interface RawRequestOptions {
  /** Closes the stream with this RST_STREAM code after `cancelAfterMs`. */
  cancel?: { afterMs: number; code?: number };
  /** Keeps the request body open (no END_STREAM) until cancelled. */
  holdOpen?: boolean;
  timeoutMs?: number;
}

/** One HTTP/2 request on a connection of its own. */
export async function rawRequest(
  port: number,
  headers: http2.OutgoingHttpHeaders,
  body: Uint8Array | undefined,
  options: RawRequestOptions = {},
): Promise<RawResponse> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  try {
    return await requestOn(session, headers, body, options);
  } finally {
    session.close();
  }
}

export function requestOn(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Uint8Array | undefined,
  options: RawRequestOptions = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined && !options.holdOpen });
    const out: RawResponse = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0), rstCode: 0 };
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms`));
    }, options.timeoutMs ?? 10_000);
    stream.on("response", (h) => {
      out.headers = h;
      out.status = Number(h[":status"]);
    });
    stream.on("trailers", (t) => (out.trailers = t));
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("error", () => {});
    stream.on("close", () => {
      clearTimeout(timer);
      out.body = Buffer.concat(chunks);
      out.rstCode = stream.rstCode ?? 0;
      resolve(out);
    });
    if (body !== undefined) {
      if (options.holdOpen) stream.write(body);
      else stream.end(body);
    }
    if (options.cancel !== undefined) {
      const { afterMs, code = http2.constants.NGHTTP2_CANCEL } = options.cancel;
      setTimeout(() => stream.close(code), afterMs);
    }
  });
}

/** A gRPC length-prefixed message: flags byte, 4-byte big-endian length, payload. */
export function envelope(payload: Uint8Array, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(payload.byteLength, 1);
  return Buffer.concat([head, payload]);
}

export const COMPRESSED = 1;

export function gzip(bytes: Uint8Array): Buffer {
  return gzipSync(bytes);
}

export interface GrpcResult {
  /** grpc-status from the trailers (or a trailers-only response); undefined when none arrived. */
  code: number | undefined;
  message: string;
  response: RawResponse;
}

/** A gRPC call with a hand-made body: `body` is sent as is (build it with `envelope`). */
export async function grpcCall(
  port: number,
  path: string,
  body: Uint8Array,
  headers: http2.OutgoingHttpHeaders = {},
  options: RawRequestOptions = {},
): Promise<GrpcResult> {
  const response = await rawRequest(
    port,
    { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers },
    body,
    options,
  );
  return grpcResultOf(response);
}

export function grpcResultOf(response: RawResponse): GrpcResult {
  const source = response.trailers["grpc-status"] !== undefined ? response.trailers : response.headers;
  const status = source["grpc-status"];
  const message = source["grpc-message"];
  return {
    code: status === undefined ? undefined : Number(status),
    message: typeof message === "string" ? decodeURIComponent(message) : "",
    response,
  };
}

export interface ConnectResult {
  status: number;
  /** The Connect error's code ("invalid_argument", …), or undefined on success. */
  code: string | undefined;
  message: string;
  response: RawResponse;
}

/** A Connect unary POST with a hand-made body. */
export async function connectPost(
  port: number,
  path: string,
  body: Uint8Array,
  headers: http2.OutgoingHttpHeaders = {},
  options: RawRequestOptions = {},
): Promise<ConnectResult> {
  const response = await rawRequest(
    port,
    {
      ":method": "POST",
      ":path": path,
      "content-type": "application/proto",
      "connect-protocol-version": "1",
      ...headers,
    },
    body,
    options,
  );
  return connectResultOf(response);
}

/** A Connect unary GET: `query` is appended to `path` as is. */
export async function connectGet(
  port: number,
  path: string,
  query: string,
  headers: http2.OutgoingHttpHeaders = {},
): Promise<ConnectResult> {
  const response = await rawRequest(port, { ":method": "GET", ":path": `${path}?${query}`, ...headers }, undefined);
  return connectResultOf(response);
}

export function connectResultOf(response: RawResponse): ConnectResult {
  const type = String(response.headers["content-type"] ?? "");
  if (!type.startsWith("application/json") || response.status === 200) {
    return { status: response.status, code: undefined, message: "", response };
  }
  const json = JSON.parse(response.body.toString()) as { code?: string; message?: string };
  return { status: response.status, code: json.code, message: json.message ?? "", response };
}
