// Opens the adapters a Config names. A configured URL always means the real
// server, never a silent fallback. An unset one means the embedded part:
// PGlite under DATA_DIR, or the in-process cache and bus (one instance only:
// other replicas could not see them).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config, WarmupConfig } from "../config/config.js";
import type { Logger } from "../log/logger.js";
import type { CacheStats } from "../metrics/cache-stats.js";
import type { CacheStore } from "./cache-store.js";
import type { Database, SqlExecutor } from "./database.js";
import type { EventBus } from "./event-bus.js";
import { FailurePolicy, GuardedCacheStore } from "./failure-policy.js";
import { MemoryCacheStore } from "./memory-cache-store.js";
import { MemoryEventBus } from "./memory-event-bus.js";
import { PgDatabase } from "./pg-database.js";
import { PGliteDatabase } from "./pglite-database.js";
import { RedisCacheStats } from "./redis-cache-stats.js";
import { RedisMemoryPolicy, type MemoryPolicySource } from "./redis-eviction-policy.js";
import { RedisCacheStore } from "./redis-cache-store.js";
import { createRedisClient, waitUntilReady } from "./redis-client.js";
import { RedisEventBus } from "./redis-event-bus.js";

export interface Stores {
  db: Database;
  cache: CacheStore;
  bus: EventBus;
  /** For the cache gauges (redis_keyspace_hit_rate, cache_size_bytes). */
  cacheStats?: CacheStats;
  /** Redis' maxmemory-policy and memory use; absent for the in-process cache, which evicts by itself. */
  memoryPolicy?: MemoryPolicySource;
}

/** How long startup waits for Redis before it serves from PostgreSQL alone. */
const REDIS_READY_WAIT_MS = 2000;

export function usesRedis(config: Config): boolean {
  return config.redisUrl !== undefined || config.redisSentinel !== undefined;
}

export async function openStores(config: Config, log: Logger): Promise<Stores> {
  // Read before anything is opened, so a missing file stops startup with nothing to clean up.
  const redisTlsCa = config.redisTlsCaFile === undefined ? undefined : readFileSync(config.redisTlsCaFile);
  const db =
    config.databaseUrl === undefined
      ? await PGliteDatabase.open(join(config.dataDir, "pglite"))
      : new PgDatabase({
          connectionString: config.databaseUrl,
          max: config.dbPoolSize,
          statementTimeoutMs: config.dbStatementTimeoutMs,
          preparedStatements: config.dbPreparedStatements,
        });
  if (!usesRedis(config)) {
    const cache = new MemoryCacheStore({ maxBytes: config.memoryCacheMaxBytes });
    return { db, cache, bus: new MemoryEventBus(), cacheStats: cache };
  }
  const redis = createRedisClient({
    url: config.redisUrl,
    cluster: config.redisCluster,
    sentinel: config.redisSentinel,
    tlsCa: redisTlsCa,
    log,
  });
  if (!(await waitUntilReady(redis, REDIS_READY_WAIT_MS))) {
    log.warn("Redis is not reachable yet; serving from PostgreSQL until it is");
  }
  // One connection, one verdict on whether Redis is failing, for the cache and the bus.
  const policy = new FailurePolicy({ timeoutMs: config.redisTimeoutMs });
  return {
    db,
    cache: new GuardedCacheStore(new RedisCacheStore(redis), policy),
    bus: new RedisEventBus(redis, policy),
    cacheStats: new RedisCacheStats(redis),
    memoryPolicy: new RedisMemoryPolicy(redis),
  };
}

/**
 * Where warm-up reads user ids: WARMUP_DATABASE_URL's database on one
 * connection of its own, closed after the warm-up, or else the service's own
 * database (which the warm-up must not close).
 */
export function openWarmupSource(warmup: WarmupConfig, db: SqlExecutor): SqlExecutor & { close?(): Promise<void> } {
  if (warmup.databaseUrl === undefined) return { query: (text, params, options) => db.query(text, params, options) };
  return new PgDatabase({ connectionString: warmup.databaseUrl, max: 1, statementTimeoutMs: warmup.timeoutMs });
}
