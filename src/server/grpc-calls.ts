// Every gRPC call on the grpc-js transport, seen from its HTTP/2 stream. We
// listen on grpc-js' own HTTP/2 server (grpc-listener.ts), just before
// grpc-js, so each call is recorded from its first byte to its last:
//
// - The status a call ends with is read where it leaves, in the stream's
//   response headers or trailers. So every call is logged and counted once,
//   with its real code, also those grpc-js answers without running a
//   handler (deadline passed, message too large, not decodable), those of
//   the health and reflection packages, and those the client cancelled
//   (the stream closed before any status: CANCELLED).
// - grpc-js answers a request it cannot decompress, a malformed grpc-timeout
//   and a message its deserializer refused with INTERNAL. Those are the
//   client's mistakes: they leave as INVALID_ARGUMENT, saying what was wrong.
// - ProfileService calls get their RpcContext here: the call id travels to
//   the handler in the request metadata (set on every stream, so a client
//   cannot pick it), and every `authorization` line is kept (Node keeps only
//   the first of a repeated one).

import * as http2 from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { rpcContext, type RpcContext } from "../api/context.js";
import type { Finish, RpcObserver } from "../api/observe.js";
import { Code, OK, RpcError } from "../api/status.js";
import { endingSpan, tracing } from "../tracing/tracing.js";
import type { ResponseTap } from "./request-limits.js";

/** The metadata key that names a call's record for its handler. */
const CALL_ID = "x-profile-service-call";

export interface GrpcCall {
  readonly ctx: RpcContext;
  readonly stream: http2.ServerHttp2Stream;
  /** What the handler failed with, for the log line (its cause, for INTERNAL). */
  error: RpcError | undefined;
  /**
   * The first message is flagged as compressed but the request names no
   * grpc-encoding. grpc-js would hand its bytes on as if uncompressed.
   */
  compressedWithoutEncoding: boolean;
  /** Ends the call's signal (at shutdown: UNAVAILABLE); no-op once it ended. */
  abort(reason: RpcError): void;
}

interface Record extends GrpcCall {
  finish: Finish;
  finished: boolean;
}

export class GrpcCalls {
  private readonly methods = new Map<string, DescMethod>();
  private readonly byId = new Map<string, Record>();
  private nextId = 0;

  constructor(
    private readonly observer: RpcObserver,
    private readonly apiServices: ReadonlySet<string>,
    services: readonly DescService[],
  ) {
    for (const service of services) {
      for (const method of service.methods) this.methods.set(`/${service.typeName}/${method.name}`, method);
    }
  }

  /** Every method served, for metrics exported at zero from startup. */
  get served(): DescMethod[] {
    return [...this.methods.values()];
  }

  /**
   * Called for every stream before grpc-js sees it; returns what must see
   * the stream's response (its status), or undefined for a stream that is no
   * call of ours (grpc-js answers UNIMPLEMENTED or 415 itself).
   */
  onStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    raw: string[],
  ): ResponseTap | undefined {
    const method = this.methods.get(headers[":path"] ?? "");
    const contentType = headers["content-type"];
    if (method === undefined || typeof contentType !== "string" || !contentType.startsWith("application/grpc")) {
      return undefined;
    }
    const controller = new AbortController();
    const ctx = rpcContext({
      signal: controller.signal,
      authorization: headerLines(raw, "authorization"),
      connection: stream.session,
      resetStream: (reason) =>
        stream.close(
          reason === "overflow" ? http2.constants.NGHTTP2_ENHANCE_YOUR_CALM : http2.constants.NGHTTP2_REFUSED_STREAM,
        ),
    });
    const id = String(++this.nextId);
    const api = this.apiServices.has(method.parent.typeName);
    // Probes and reflection are not traced: a liveness check every few seconds per pod would be most traces.
    ctx.span = api
      ? tracing()?.rpc({
          service: method.parent.typeName,
          method: method.name,
          traceparent: single(headers.traceparent),
          tracestate: single(headers.tracestate),
          peerAddress: stream.session?.socket?.remoteAddress,
          peerPort: stream.session?.socket?.remotePort,
        })
      : undefined;
    const record: Record = {
      ctx,
      stream,
      error: undefined,
      compressedWithoutEncoding: false,
      finished: false,
      finish: endingSpan(this.observer.start(method, ctx), ctx.span),
      abort: (reason) => {
        if (!controller.signal.aborted) controller.abort(reason);
      },
    };
    if (api) {
      headers[CALL_ID] = id;
      this.byId.set(id, record);
    } else {
      delete headers[CALL_ID];
    }
    const encoding = headers["grpc-encoding"];
    if (encoding === undefined || encoding === "identity") {
      // The envelope's first byte is its compressed flag; the first chunk starts with it.
      stream.once("data", (chunk: Buffer) => {
        if (((chunk[0] ?? 0) & 1) === 1) record.compressedWithoutEncoding = true;
      });
    }
    // grpc-js listens for one 'error' only; a stream we write to ourselves (a watch) may see a second.
    if (api) stream.on("error", () => {});
    stream.once("close", () => {
      if (api) this.byId.delete(id);
      if (!record.finished) this.ended(record, CLIENT_WENT_AWAY);
      record.abort(CALL_OVER);
    });
    return statusTap(typeof encoding === "string" ? encoding : "identity", (status) => this.ended(record, status));
  }

  /** The call a ProfileService handler is running for. */
  callOf(metadata: grpc.Metadata): GrpcCall {
    const id = metadata.get(CALL_ID)[0];
    const record = typeof id === "string" ? this.byId.get(id) : undefined;
    // onStream gives every ProfileService call one; without it this is a wiring bug.
    if (record === undefined) throw new Error("no call record for this ProfileService call");
    return record;
  }

  /** Makes every ProfileService call still running answer `reason` (the last step of a graceful shutdown). */
  abortAll(reason: RpcError): void {
    for (const record of this.byId.values()) record.abort(reason);
  }

  private ended(record: Record, status: { code: number; message: string }): void {
    if (record.finished) return;
    record.finished = true;
    const error =
      status.code === OK
        ? undefined
        : record.error !== undefined && Number(record.error.code) === status.code
          ? record.error
          : new RpcError(status.message, status.code);
    record.finish(status.code, error);
    // The handler learns why its call ended (a deadline, a limit) as its signal's reason.
    if (error !== undefined) record.abort(error);
  }
}

const SUCCEEDED = { code: OK, message: "" };
const CLIENT_WENT_AWAY = { code: Code.Canceled, message: "the client reset the stream or the connection closed" };
// The reason a finished call's signal aborts with: shared, since nobody reads it once the status is out.
const CALL_OVER = new RpcError("the call is over", Code.Canceled);

/**
 * Calls `onStatus` with the grpc-status a stream's response carries, when
 * it is sent (trailers-only headers, or trailers), after turning grpc-js'
 * own INTERNAL answers to undecodable requests into INVALID_ARGUMENT.
 */
function statusTap(encoding: string, onStatus: (status: { code: number; message: string }) => void): ResponseTap {
  return (headers) => {
    const raw = headers["grpc-status"];
    if (raw === undefined) return;
    const code = Number(raw);
    if (code === OK) {
      onStatus(SUCCEEDED);
      return;
    }
    const message = safeDecode(String(headers["grpc-message"] ?? ""));
    if (code === Number(Code.Internal)) {
      const client = clientMistake(message, encoding);
      if (client !== undefined) {
        headers["grpc-status"] = String(Code.InvalidArgument);
        headers["grpc-message"] = encodeURI(client);
        onStatus({ code: Code.InvalidArgument, message: client });
        return;
      }
    }
    onStatus({ code, message });
  };
}

// grpc-js' wording (pinned: package.json), for requests it could not read.
function clientMistake(message: string, encoding: string): string | undefined {
  if (message === "Failed to decompress message") {
    return `the message is not valid ${printable(encoding)} data (truncated or corrupt)`;
  }
  if (message.startsWith("Invalid grpc-timeout value")) return "the grpc-timeout header is malformed";
  if (message.startsWith("Error deserializing request")) return "the request message is not valid protobuf";
  return undefined;
}

function printable(s: string): string {
  return s.slice(0, 32).replace(/[^\x20-\x7e]/g, "?");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return typeof value === "string" ? value : value?.[0];
}

function headerLines(raw: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) values.push(raw[i + 1]!);
  return values;
}
