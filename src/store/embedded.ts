// The embedded default in one call: PGlite for the database, and the
// in-process cache and bus. For a single instance only (the cache and the bus
// live in this process, so another replica would neither see nor invalidate them).

import { join } from "node:path";
import type { CacheStats } from "./cache-stats.js";
import type { CacheStore } from "./cache-store.js";
import type { Database } from "./database.js";
import type { EventBus } from "./event-bus.js";
import { MemoryCacheStore } from "./memory-cache-store.js";
import { MemoryEventBus } from "./memory-event-bus.js";
import { PGliteDatabase } from "./pglite-database.js";

export interface EmbeddedStoreOptions {
  /** Bound on the in-process cache (UTF-8 bytes of keys and values). */
  cacheMaxBytes: number;
}

export interface EmbeddedStores {
  db: Database;
  cache: CacheStore;
  bus: EventBus;
  cacheStats: CacheStats;
}

/** Opens the stores; the database persists under `dataDir`/pglite. Migrations are the caller's, as for PostgreSQL. */
export async function openEmbeddedStores(dataDir: string, options: EmbeddedStoreOptions): Promise<EmbeddedStores> {
  const db = await PGliteDatabase.open(join(dataDir, "pglite"));
  const cache = new MemoryCacheStore({ maxBytes: options.cacheMaxBytes });
  return { db, cache, bus: new MemoryEventBus(), cacheStats: cache };
}
