// Cache warm-up at startup (the seed's warmup_cache), batched and bounded.
//
// By default it warms the most recently updated profiles: updated_at is
// already indexed, so this costs nothing to track. WARMUP_QUERY against
// WARMUP_DATABASE_URL can pick the users instead, e.g. the seed's "logged in
// during the last 24 hours" from the auth database.

import { withTimeout } from "../lib/timeout.js";
import { errorSummary, type Logger } from "../log/logger.js";
import type { SqlExecutor } from "../store/database.js";
import type { CacheAside, Entity } from "../cache/cache-aside.js";
import type { ProfileRecord } from "./records.js";

export interface WarmupOptions {
  /** How many profiles to warm; 0 turns warm-up off. */
  limit: number;
  timeoutMs: number;
  /** Custom id query (its first column is the user id); by default the most recently updated profiles. */
  query?: string;
}

/** Where user ids come from: opened for one warm-up, closed after it. */
export interface IdSource extends SqlExecutor {
  close?(): Promise<void>;
}

export interface WarmupDeps {
  cache: CacheAside;
  entity: Entity<ProfileRecord>;
  openIdSource: () => IdSource;
  log: Logger;
}

export interface WarmupResult {
  ids: number;
  warmed: number;
  ms: number;
  timedOut: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Warms the cache, bounded by `timeoutMs`; never throws (serving goes on cold). */
export async function warmUp(deps: WarmupDeps, options: WarmupOptions): Promise<WarmupResult> {
  if (options.limit === 0) return { ids: 0, warmed: 0, ms: 0, timedOut: false };
  const { log } = deps;
  const started = performance.now();
  const source = deps.openIdSource();
  try {
    const outcome = await withTimeout(warm(deps, source, options), options.timeoutMs, () => "timeout" as const);
    const ms = Math.round(performance.now() - started);
    if (outcome === "timeout") {
      log.warn({ timeout_ms: options.timeoutMs }, "cache warm-up hit its deadline; serving continues cold");
      return { ids: 0, warmed: 0, ms, timedOut: true };
    }
    log.info({ warmed: outcome.warmed, ids: outcome.ids, ms }, `warmed ${outcome.warmed} profiles in ${ms} ms`);
    return { ...outcome, ms, timedOut: false };
  } catch (err) {
    log.warn({ err: errorSummary(err) }, "cache warm-up failed; serving continues cold");
    return { ids: 0, warmed: 0, ms: Math.round(performance.now() - started), timedOut: false };
  } finally {
    await source.close?.();
  }
}

async function warm(
  deps: WarmupDeps,
  source: SqlExecutor,
  options: WarmupOptions,
): Promise<{ ids: number; warmed: number }> {
  const { rows } = options.query
    ? await source.query<Record<string, unknown>>(options.query)
    : await source.query<Record<string, unknown>>("SELECT user_id FROM profiles ORDER BY updated_at DESC LIMIT $1", [
        options.limit,
      ]);
  const ids = rows
    .map((row) => {
      const id = Object.values(row)[0];
      return typeof id === "string" ? id.toLowerCase() : "";
    })
    .filter((id) => UUID.test(id))
    .slice(0, options.limit);
  return { ids: ids.length, warmed: await deps.cache.warm(deps.entity, ids) };
}
