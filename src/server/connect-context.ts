// Connect-ES context values of the Connect transport: the node request
// behind a call, and the API's RpcContext built for it.

import * as http2 from "node:http2";
import type * as http from "node:http";
import { createContextKey, type ContextValues } from "@connectrpc/connect";
import type { RpcContext } from "../api/context.js";
import { rpcContext } from "../api/context.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/** The node request behind a call, so a stuck stream can be reset at the HTTP/2 level. */
export const nodeRequestKey = createContextKey<NodeRequest | undefined>(undefined, { description: "node request" });

/** Set by the observer interceptor on ProfileService calls. */
export const rpcContextKey = createContextKey<RpcContext | undefined>(undefined, { description: "rpc context" });

export function connectRpcContext(
  values: ContextValues,
  signal: AbortSignal,
  authorization: string | null,
): RpcContext {
  const req = values.get(nodeRequestKey);
  return rpcContext({
    signal,
    // Repeated header lines arrive joined by ", " (node-request.ts), which authentication refuses.
    authorization: authorization === null ? [] : [authorization],
    connection: req === undefined ? undefined : "stream" in req ? req.stream.session : req.socket,
    resetStream: (reason) => resetStream(req, reason),
  });
}

/**
 * Ends a stream that cannot take more data at the HTTP/2 level, since a status
 * in trailers would queue behind the data it cannot send. Clients map the reset
 * codes: ENHANCE_YOUR_CALM to RESOURCE_EXHAUSTED, REFUSED_STREAM to UNAVAILABLE.
 */
function resetStream(req: NodeRequest | undefined, reason: "overflow" | "shutdown"): void {
  const code =
    reason === "overflow" ? http2.constants.NGHTTP2_ENHANCE_YOUR_CALM : http2.constants.NGHTTP2_REFUSED_STREAM;
  if (req !== undefined && "stream" in req) req.stream.close(code);
  else req?.socket?.destroy();
}
