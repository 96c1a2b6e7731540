import { createContextKey } from "@connectrpc/connect";
import type { Caller } from "../auth/caller.js";
import type { CacheStatus } from "../metrics/metrics.js";

/** Set by the auth interceptor on every authenticated call. */
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "verified caller" });

/** Set by read handlers, for api_response_time_seconds{cache_status} and the RPC log line. */
export const cacheStatusKey = createContextKey<CacheStatus | "none">("none", { description: "cache status" });

/** Set by handlers once the target user is known, for the RPC log line. */
export const targetUserKey = createContextKey<string | undefined>(undefined, { description: "target user id" });
