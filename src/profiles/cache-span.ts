// The cache decision of a read, as a span when tracing is on: how each key
// was answered (hit, miss, bypass, and whatever else cache-aside reports).
// Its Redis and PostgreSQL calls, and a wait on another filler's lease, are
// its children.

import type { CacheAside, Lookup } from "../cache/cache-aside.js";
import { tracing } from "../tracing/tracing.js";

export const CACHE_READ_SPAN = "cache read";

/** `cache.read(lookups)`, traced. */
export function tracedRead(cache: CacheAside, lookups: readonly Lookup<unknown>[]): Promise<void> {
  const t = tracing();
  if (t === undefined) return cache.read(lookups);
  return t.child(CACHE_READ_SPAN, async (notes) => {
    await cache.read(lookups);
    const statuses = lookups.flatMap((l) => l.outcomes.map((o) => o.status));
    notes.set({
      "cache.type": lookups.map((l) => l.entity.type),
      // One word for the read: its keys' status when they agree.
      "cache.status": statuses.every((s) => s === statuses[0]) ? (statuses[0] ?? "none") : "mixed",
      "cache.statuses": statuses,
    });
  });
}
