// A Connect-ES universal request from a Node request, as connect-node builds
// it, with three corrections for a server:
//
// - Its signal says why a call was cut short from the server's side. Connect
//   maps the HTTP/2 reset code as a client would: a stream the client reset
//   with INTERNAL_ERROR or PROTOCOL_ERROR, or one on a connection that died
//   (Ctrl-C on `buf curl`), became INTERNAL, which is logged as our fault and
//   fires alerts. A client going away is CANCELLED. REFUSED_STREAM and
//   ENHANCE_YOUR_CALM keep UNAVAILABLE and RESOURCE_EXHAUSTED: those are the
//   resets we send ourselves (shutdown, a watcher too far behind).
// - A request body that cannot be read to its end (the stream was reset, the
//   connection closed) is CANCELLED too, not an INTERNAL read error.
//   The signal is also in the context values (transport-signal.ts).
// - Repeated `authorization` header lines stay visible. Node keeps only the
//   first of a header it treats as single-valued, so a second token would be
//   silently dropped; joined with ", " (as RFC 9110 combines field lines) it
//   fails the auth interceptor's "exactly one bearer token" check instead.

import type * as http from "node:http";
import type * as http2 from "node:http2";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import { universalRequestFromNodeRequest } from "@connectrpc/connect-node";
import { transportSignalKey } from "./transport-signal.js";

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** Throws (synchronously) when the request has no usable authority; the caller answers 400. */
export function universalRequestOf(
  req: NodeRequest,
  res: NodeResponse,
  contextValues: ContextValues,
): UniversalServerRequest {
  const uReq = universalRequestFromNodeRequest(req, res, undefined, contextValues);
  const authorization = headerLines(req.rawHeaders, "authorization");
  if (authorization.length > 1) uReq.header.set("authorization", authorization.join(", "));
  const signal = serverSignal(uReq.signal);
  contextValues.set(transportSignalKey, signal);
  return {
    ...uReq,
    signal,
    body: isByteStream(uReq.body) ? readBody(uReq.body) : uReq.body,
  };
}

function serverSignal(connectSignal: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const follow = () => controller.abort(serverReason(connectSignal.reason));
  if (connectSignal.aborted) follow();
  else connectSignal.addEventListener("abort", follow, { once: true });
  return controller.signal;
}

function serverReason(reason: unknown): unknown {
  // Not a ConnectError: the stream closed normally (an AbortError, CANCELLED if anyone asks).
  if (!(reason instanceof ConnectError)) return reason;
  if (reason.code === Code.Canceled || reason.code === Code.Unavailable || reason.code === Code.ResourceExhausted) {
    return reason;
  }
  return new ConnectError(
    `the client reset the stream or the connection closed (${reason.rawMessage})`,
    Code.Canceled,
    undefined,
    undefined,
    reason,
  );
}

async function* readBody(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* body;
  } catch (err) {
    throw new ConnectError(
      "the request body was cut off: the client reset the stream or the connection closed",
      Code.Canceled,
      undefined,
      undefined,
      err,
    );
  }
}

function isByteStream(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

function headerLines(raw: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) values.push(raw[i + 1]!);
  return values;
}
