// What a handler knows about its call, filled in by the transport that carries
// it and by the handler itself. These fields are the API's context keys: the
// transports read cacheStatus and targetUser for the RPC log line and metrics.

import type { Caller } from "../auth/caller.js";
import type { CacheStatus } from "../cache/cache-aside.js";
import type { RpcSpan } from "../tracing/tracing.js";

export interface RpcContext {
  /**
   * Aborts when the call is cut short, with an RpcError as its reason:
   * CANCELLED (the client went away), DEADLINE_EXCEEDED, or UNAVAILABLE (shutdown).
   */
  readonly signal: AbortSignal;
  /** Every `authorization` header line the request carried. */
  readonly authorization: readonly string[];
  /** Stands for the connection that carries the call (per-connection limits); undefined when unknown. */
  readonly connection: object | undefined;
  /**
   * Ends the call's stream at once below the RPC layer, for a watch whose
   * queued data cannot get out: `overflow` (RESOURCE_EXHAUSTED) or `shutdown` (UNAVAILABLE).
   */
  resetStream(reason: "overflow" | "shutdown"): void;
  /** Set once the token is verified. */
  caller: Caller | undefined;
  /**
   * Set by read handlers, for api_response_time_seconds{cache_status} and the
   * RPC log line; "stale" also makes the transports send `x-cache: stale`.
   */
  cacheStatus: CacheStatus | "none";
  /** Set once the target user is known, for the RPC log line. */
  targetUser: string | undefined;
  /** The call's server span, when tracing is on (set by the transport). */
  span: RpcSpan | undefined;
}

/** The response header both transports send, as `x-cache: stale`, on an answer served from a grace copy. */
export const CACHE_HEADER = "x-cache";

/** The fields a transport supplies; the rest start empty. */
export function rpcContext(
  transport: Pick<RpcContext, "signal" | "authorization" | "connection" | "resetStream">,
): RpcContext {
  return { ...transport, caller: undefined, cacheStatus: "none", targetUser: undefined, span: undefined };
}
