// Cache warm-up at startup (the seed's warmup_cache), batched and bounded.
//
// By default it warms the most recently updated profiles: updated_at is
// already indexed, so this costs nothing to track. WARMUP_QUERY against
// WARMUP_DATABASE_URL can pick the users instead, e.g. the seed's "logged in
// during the last 24 hours" from the auth database.

import { errorSummary, type Logger } from "../log/logger.js";
import type { SqlExecutor } from "../store/database.js";
import type { CacheAside, Entity } from "./cache-aside.js";
import type { ProfileRecord } from "./records.js";

export interface WarmupOptions {
  limit: number;
  timeoutMs: number;
  /** Where user ids come from; their first column is the user id. */
  idSource: SqlExecutor;
  /** Custom id query; by default the most recently updated profiles. */
  query?: string;
}

export interface WarmupResult {
  ids: number;
  warmed: number;
  ms: number;
  timedOut: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function warmUp(
  cache: CacheAside,
  entity: Entity<ProfileRecord>,
  options: WarmupOptions,
  log: Logger,
): Promise<WarmupResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), options.timeoutMs);
  });
  const work = (async () => {
    const { rows } = options.query
      ? await options.idSource.query<Record<string, unknown>>(options.query)
      : await options.idSource.query<Record<string, unknown>>(
          "SELECT user_id FROM profiles ORDER BY updated_at DESC LIMIT $1",
          [options.limit],
        );
    const ids = rows
      .map((row) => String(Object.values(row)[0] ?? "").toLowerCase())
      .filter((id) => UUID.test(id))
      .slice(0, options.limit);
    return { ids: ids.length, warmed: await cache.warm(entity, ids) };
  })();
  try {
    const outcome = await Promise.race([work, deadline]);
    const ms = Math.round(performance.now() - started);
    if (outcome === "timeout") {
      work.catch(() => {});
      log.warn({ timeout_ms: options.timeoutMs }, "cache warm-up hit its deadline; serving continues cold");
      return { ids: 0, warmed: 0, ms, timedOut: true };
    }
    log.info({ warmed: outcome.warmed, ids: outcome.ids, ms }, `warmed ${outcome.warmed} profiles in ${ms} ms`);
    return { ...outcome, ms, timedOut: false };
  } catch (err) {
    log.warn({ err: errorSummary(err) }, "cache warm-up failed; serving continues cold");
    return { ids: 0, warmed: 0, ms: Math.round(performance.now() - started), timedOut: false };
  } finally {
    clearTimeout(timer);
  }
}
