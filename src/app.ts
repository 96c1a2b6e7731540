// Composition root: turns a Config into a running set of parts. Nothing else
// constructs adapters, so tests build the same app the binary runs.

import type * as http2 from "node:http2";
import { setMaxListeners } from "node:events";
import { join } from "node:path";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import type { Config } from "./config/config.js";
import { JoseTokenVerifier } from "./auth/token-verifier.js";
import { CachingTokenVerifier } from "./auth/token-cache.js";
import { EventPublisher } from "./events/publisher.js";
import { errorSummary, type Logger } from "./log/logger.js";
import { Metrics } from "./metrics/metrics.js";
import { CacheAside, MAX_CACHE_VALUE_BYTES, type CacheAsideHooks } from "./profiles/cache-aside.js";
import { cacheKeys, channels } from "./profiles/cache-keys.js";
import { profileHandlers } from "./profiles/handlers.js";
import { NearCache } from "./profiles/near-cache.js";
import { Profiles } from "./profiles/profiles.js";
import { warmUp, type WarmupResult } from "./profiles/warmup.js";
import { SqlProfileStore } from "./profiles/repository.js";
import { authInterceptor } from "./server/auth-interceptor.js";
import { nodeAdapter } from "./server/node-adapter.js";
import { rpcObserver } from "./server/rpc-observer.js";
import { Outbox } from "./events/outbox.js";
import { EventRelay } from "./events/relay.js";
import { WatchHub } from "./events/watch-hub.js";
import { ChangeFeed } from "./events/change-feed.js";
import { nodeRequestKey, watchHandler } from "./events/watch-handler.js";
import { HealthStatus, ServingStatus } from "./server/health.js";
import { registerStandardServices } from "./server/standard-services.js";
import type { CacheStats } from "./store/cache-stats.js";
import type { CacheStore } from "./store/cache-store.js";
import type { Database } from "./store/database.js";
import type { EventBus } from "./store/event-bus.js";
import { migrate } from "./store/migrations.js";
import { PgDatabase } from "./store/pg-database.js";
import { RedisCacheStats } from "./store/redis-cache-stats.js";
import { RedisCacheStore } from "./store/redis-cache-store.js";
import { createRedisClient, waitUntilReady } from "./store/redis-client.js";
import { RedisEventBus } from "./store/redis-event-bus.js";
import { MemoryCacheStore } from "./store/memory-cache-store.js";
import { MemoryEventBus } from "./store/memory-event-bus.js";
import { PGliteDatabase } from "./store/pglite-database.js";
import { resolveDevSecret } from "./auth/dev-secret.js";

export interface AppOptions {
  config: Config;
  log: Logger;
  /** Test seam for the stale-fill race test. */
  cacheHooks?: CacheAsideHooks;
  /** Wraps the stores the config opened (tests count queries and round trips this way). */
  decorateStores?: (stores: Stores) => Stores;
}

export interface Stores {
  db: Database;
  cache: CacheStore;
  bus: EventBus;
  /** For the cache gauges (redis_keyspace_hit_rate, cache_size_bytes). */
  cacheStats?: CacheStats;
}

export interface App {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly profiles: Profiles;
  readonly stores: Stores;
  readonly hub: WatchHub;
  readonly relay: EventRelay;
  /** grpc.health.v1 statuses: SERVING once migrations ran; the owner keeps them current. */
  readonly health: HealthStatus;
  /** Which parts run embedded, and the development signing secret when no JWT setting is given. */
  readonly embedded: { database: boolean; cache: boolean; devSecret: string | undefined };
  /** The HTTP/2 request handler serving gRPC, gRPC-Web and Connect. */
  readonly handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  /** Warms the cache as configured (bounded by WARMUP_TIMEOUT_MS); never throws. */
  warmUp(): Promise<WarmupResult>;
  /** Makes handlers still running answer UNAVAILABLE (the last step of a graceful shutdown). */
  abortInFlight(): void;
  /** Ends watch streams (final bookmark, then UNAVAILABLE), waiting up to `graceMs` for them to drain. */
  endStreams(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function createApp(options: AppOptions): Promise<App> {
  const { config, log } = options;
  const metrics = new Metrics();
  metrics.collectDefaults();
  const opened = await openStores(config, log);
  const stores = options.decorateStores?.(opened) ?? opened;
  await migrate(stores.db);
  const keys = cacheKeys(config.redisKeyPrefix);
  metrics.observeCache(stores.cacheStats, { profile: keys.profile(""), preferences: keys.preferences("") });
  const health = new HealthStatus([ProfileService.typeName]);
  health.setAll(ServingStatus.SERVING);

  const near =
    config.nearCacheMaxEntries > 0
      ? new NearCache(keys, { maxEntries: config.nearCacheMaxEntries, maxAgeMs: config.nearCacheMaxAgeMs })
      : undefined;
  const cache = new CacheAside(
    stores.cache,
    {
      leaseTtlMs: config.cacheLeaseTtlMs,
      leaseWaitMs: config.cacheLeaseWaitMs,
      negativeTtlSeconds: config.negativeCacheTtlSeconds,
      breakerMs: 1000,
      breakerThreshold: 3,
      earlyRefreshBeta: config.earlyRefreshBeta,
      maxValueBytes: MAX_CACHE_VALUE_BYTES,
    },
    metrics,
    (operation, err) => log.warn({ operation, err: errorSummary(err) }, "cache unavailable; reading PostgreSQL"),
    options.cacheHooks,
    near,
  );
  const outbox = new Outbox(stores.db);
  const eventChannels = channels(config.redisKeyPrefix);
  const publisher = new EventPublisher(stores.bus, eventChannels, outbox, metrics, log);
  const feed = new ChangeFeed(stores.bus, eventChannels, log);
  const hub = new WatchHub(
    outbox,
    {
      tailPageSize: 100,
      replayPageSize: 500,
      pollIntervalMs: config.eventPollIntervalMs,
      progressIntervalMs: config.watchProgressIntervalSeconds * 1000,
      queueSize: config.watchQueueSize,
    },
    metrics,
    log,
  );
  await hub.start();
  feed.add(hub);
  if (near !== undefined) feed.add(near);
  await feed.start();
  const relay = new EventRelay(
    outbox,
    publisher,
    {
      intervalMs: config.eventRelayIntervalMs,
      graceMs: config.eventRelayGraceMs,
      batchSize: 500,
      retentionHours: config.eventRetentionHours,
      pruneIntervalMs: config.eventPruneIntervalSeconds * 1000,
    },
    metrics,
    log,
  );
  relay.start();

  const profiles = new Profiles(
    new SqlProfileStore(stores.db),
    cache,
    keys,
    async (event) => {
      hub.wake(event.eventId);
      await publisher.publishCommitted(event);
    },
    metrics,
    log,
    { profileTtlSeconds: config.profileCacheTtlSeconds, preferencesTtlSeconds: config.preferencesCacheTtlSeconds },
  );

  // With no JWT setting (development only; production refuses to start), a generated secret kept under DATA_DIR.
  const devSecret =
    config.jwt.secret === undefined && config.jwt.jwksUrl === undefined ? resolveDevSecret(config.dataDir).secret : undefined;
  const verifier = new CachingTokenVerifier(new JoseTokenVerifier({ ...config.jwt, secret: config.jwt.secret ?? devSecret }));
  const shutdown = new AbortController();
  // Every call in flight links its own signal to this one: many listeners are expected.
  setMaxListeners(0, shutdown.signal);
  // The services behind auth, with API metrics and info-level logs; health and reflection are not.
  const apiServices = new Set([ProfileService.typeName]);
  const handler = nodeAdapter({
    log,
    routes: (router) => {
      router.service(ProfileService, { ...profileHandlers(profiles), watchProfileEvents: watchHandler(hub) });
      // Health and reflection: same port, outside auth (it protects only the services named below).
      registerStandardServices(router, health, [ProfileService], [file_google_rpc_error_details]);
    },
    contextValues: (req) => createContextValues().set(nodeRequestKey, req),
    interceptors: [rpcObserver(metrics, log, apiServices), authInterceptor(verifier, apiServices)],
    shutdownSignal: shutdown.signal,
    readMaxBytes: config.readMaxBytes,
  });

  return {
    config,
    metrics,
    profiles,
    stores,
    hub,
    relay,
    health,
    embedded: { database: config.databaseUrl === undefined, cache: config.redisUrl === undefined, devSecret },
    handler,
    abortInFlight: () =>
      shutdown.abort(new ConnectError("the server is shutting down; retry on another instance", Code.Unavailable)),
    endStreams: (graceMs) => hub.shutdown(graceMs),
    async warmUp() {
      const { warmup } = config;
      if (warmup.limit === 0) return { ids: 0, warmed: 0, ms: 0, timedOut: false };
      const source =
        warmup.databaseUrl === undefined
          ? undefined
          : new PgDatabase({ connectionString: warmup.databaseUrl, max: 1, statementTimeoutMs: warmup.timeoutMs });
      try {
        return await warmUp(
          cache,
          profiles.profileEntity,
          { limit: warmup.limit, timeoutMs: warmup.timeoutMs, query: warmup.query, idSource: source ?? stores.db },
          log,
        );
      } finally {
        await source?.close();
      }
    },
    async close() {
      health.shutdown();
      await hub.shutdown(0);
      await feed.stop();
      await relay.stop();
      await publisher.close();
      await Promise.allSettled([stores.cache.close(), stores.bus.close()]);
      await stores.db.close();
    },
  };
}

/**
 * A configured URL always means the real server, never a silent fallback. An
 * unset one means the embedded part: PGlite under DATA_DIR, or the in-process
 * cache and bus (one instance only: other replicas could not see them).
 */
async function openStores(config: Config, log: Logger): Promise<Stores> {
  const db =
    config.databaseUrl === undefined
      ? await PGliteDatabase.open(join(config.dataDir, "pglite"))
      : new PgDatabase({
          connectionString: config.databaseUrl,
          max: config.dbPoolSize,
          statementTimeoutMs: config.dbStatementTimeoutMs,
          preparedStatements: config.dbPreparedStatements,
        });
  if (config.redisUrl === undefined) {
    const cache = new MemoryCacheStore({ maxBytes: config.memoryCacheMaxBytes });
    return { db, cache, bus: new MemoryEventBus(), cacheStats: cache };
  }
  const redis = createRedisClient({ url: config.redisUrl, cluster: config.redisCluster });
  if (!(await waitUntilReady(redis, 2000))) {
    log.warn("Redis is not reachable yet; serving from PostgreSQL until it is");
  }
  return {
    db,
    cache: new RedisCacheStore(redis, config.redisTimeoutMs),
    bus: new RedisEventBus(redis, config.redisTimeoutMs),
    cacheStats: new RedisCacheStats(redis),
  };
}

