// Per request, below the RPC layer: the request body must arrive in time, and
// a body we stopped reading must not block the connection.

import * as http2 from "node:http2";
import type * as http from "node:http";

export type RequestHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
// With TLS and allowHTTP1, HTTP/1.1 requests come through the same handler.
type AnyRequest = http2.Http2ServerRequest | http.IncomingMessage;

/** The client has sent its whole request: END_STREAM on HTTP/2, the full message on HTTP/1.1. */
function requestComplete(req: AnyRequest): boolean {
  if ("stream" in req) {
    const stream = req.stream;
    return stream.destroyed || stream.endAfterHeaders || stream.state.remoteClose === 1;
  }
  return req.complete;
}

/** Told of each response header block or trailers a stream sends, before they are sent (they may be changed). */
export type ResponseTap = (headers: http2.OutgoingHttpHeaders) => void;

/**
 * The same two bounds on a bare HTTP/2 stream (the gRPC port, where grpc-js
 * answers): the body must arrive within `bodyTimeoutMs` of the headers, and
 * a stream answered before its body ended is reset with NO_ERROR. `tap`
 * sees what the stream answers (one wrapper per stream serves both).
 */
export function limitStream(stream: http2.ServerHttp2Stream, bodyTimeoutMs: number, tap?: ResponseTap): void {
  const complete = () => stream.destroyed || stream.endAfterHeaders || stream.state.remoteClose === 1;
  const timer = setTimeout(() => {
    if (stream.headersSent || complete()) return;
    stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }, bodyTimeoutMs);
  timer.unref();
  stream.once("close", () => clearTimeout(timer));
  // Once the response is complete (trailers, or a trailers-only answer), as in limitRequests below.
  const resetIfIncomplete = () => {
    if (complete()) return;
    setImmediate(() => {
      if (!stream.closed && !complete()) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
  };
  const respond = stream.respond.bind(stream);
  stream.respond = (headers, options) => {
    if (tap !== undefined && headers !== undefined && !Array.isArray(headers)) {
      tap(headers as http2.OutgoingHttpHeaders);
    }
    respond(headers, options);
    if (options?.endStream === true) resetIfIncomplete();
  };
  const sendTrailers = stream.sendTrailers.bind(stream);
  stream.sendTrailers = (headers) => {
    tap?.(headers);
    sendTrailers(headers);
    resetIfIncomplete();
  };
}

export function limitRequests(handler: RequestHandler, bodyTimeoutMs: number): RequestHandler {
  return (req, res) => {
    const request = req as AnyRequest;
    // A request whose body never arrives (headers only, or a body dripped
    // forever) holds a handler and its buffers; REQUEST_BODY_TIMEOUT_SECONDS
    // after the headers, if the body is still incomplete and nothing has
    // been answered, the stream is reset. gRPC clients report
    // ENHANCE_YOUR_CALM as RESOURCE_EXHAUSTED. HTTP/1.1 has no reset: the
    // connection is closed.
    const timer = setTimeout(() => {
      if (res.writableEnded || requestComplete(request)) return;
      if ("stream" in request) request.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      else request.socket.destroy();
    }, bodyTimeoutMs);
    timer.unref();
    res.once("close", () => clearTimeout(timer));

    // An answer that came before the whole body (RESOURCE_EXHAUSTED for a
    // message over READ_MAX_BYTES) leaves the client still sending.
    if ("stream" in request) {
      // HTTP/2: what it sends fills the stream's and the connection's
      // flow-control windows, and the stream stays open for good (behind a
      // proxy, so do the proxy's later calls on that connection). RFC 9113
      // §8.1: after a complete response, reset the stream with NO_ERROR, so
      // the client stops sending.
      const stream = request.stream;
      stream.once("wantTrailers", () => {
        if (request.readableEnded || stream.endAfterHeaders) return;
        // Node asks for trailers from inside nghttp2's send loop; a reset
        // submitted there would overtake them, so it waits a turn.
        setImmediate(() => {
          if (!stream.closed && !requestComplete(request)) stream.close(http2.constants.NGHTTP2_NO_ERROR);
        });
      });
    } else {
      // HTTP/1.1: the rest of the body would be read as the next request on
      // the connection. Answer with `Connection: close` instead.
      const h1 = res as unknown as http.ServerResponse;
      const writeHead = h1.writeHead.bind(h1);
      h1.writeHead = ((...args: Parameters<typeof writeHead>) => {
        if (!request.complete) h1.shouldKeepAlive = false;
        return writeHead(...args);
      }) as typeof writeHead;
    }
    handler(req, res);
  };
}
