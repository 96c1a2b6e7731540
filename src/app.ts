// Composition root: turns a Config into a running set of parts. Nothing else
// constructs adapters, so tests build the same app the binary runs.

import type * as http2 from "node:http2";
import { createContextValues } from "@connectrpc/connect";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import type { Config } from "./config/config.js";
import type { TokenVerifier } from "./auth/token-verifier.js";
import { JoseTokenVerifier } from "./auth/token-verifier.js";
import { EventPublisher } from "./events/publisher.js";
import { errorSummary, type Logger } from "./log/logger.js";
import { Metrics } from "./metrics/metrics.js";
import { CacheAside, MAX_CACHE_VALUE_BYTES, type CacheAsideHooks } from "./profiles/cache-aside.js";
import { cacheKeys, channels } from "./profiles/cache-keys.js";
import { profileHandlers } from "./profiles/handlers.js";
import { Profiles } from "./profiles/profiles.js";
import { warmUp, type WarmupResult } from "./profiles/warmup.js";
import { SqlProfileStore } from "./profiles/repository.js";
import { authInterceptor } from "./server/auth-interceptor.js";
import { nodeAdapter } from "./server/node-adapter.js";
import { rpcObserver } from "./server/rpc-observer.js";
import { Outbox } from "./events/outbox.js";
import { EventRelay } from "./events/relay.js";
import { WatchHub } from "./events/watch-hub.js";
import { nodeRequestKey, watchHandler } from "./events/watch-handler.js";
import type { CacheStore } from "./store/cache-store.js";
import type { Database } from "./store/database.js";
import type { EventBus } from "./store/event-bus.js";
import { migrate } from "./store/migrations.js";
import { PgDatabase } from "./store/pg-database.js";
import { RedisCacheStore } from "./store/redis-cache-store.js";
import { createRedisClient, waitUntilReady } from "./store/redis-client.js";
import { RedisEventBus } from "./store/redis-event-bus.js";

export interface AppOptions {
  config: Config;
  log: Logger;
  /** Test seam for the stale-fill race test. */
  cacheHooks?: CacheAsideHooks;
  /** Wraps the stores the config opened (tests count queries and round trips this way). */
  decorateStores?: (stores: Stores) => Stores;
  verifier?: TokenVerifier;
}

export interface Stores {
  db: Database;
  cache: CacheStore;
  bus: EventBus;
}

export interface App {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly profiles: Profiles;
  readonly stores: Stores;
  readonly hub: WatchHub;
  readonly relay: EventRelay;
  /** The HTTP/2 request handler serving gRPC, gRPC-Web and Connect. */
  readonly handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  /** Warms the cache as configured (bounded by WARMUP_TIMEOUT_MS); never throws. */
  warmUp(): Promise<WarmupResult>;
  /** Ends watch streams (final bookmark, then UNAVAILABLE), waiting up to `graceMs` for them to drain. */
  endStreams(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function createApp(options: AppOptions): Promise<App> {
  const { config, log } = options;
  const metrics = new Metrics();
  const opened = await openStores(config, log);
  const stores = options.decorateStores?.(opened) ?? opened;
  await migrate(stores.db);

  const cache = new CacheAside(
    stores.cache,
    {
      leaseTtlMs: config.cacheLeaseTtlMs,
      leaseWaitMs: config.cacheLeaseWaitMs,
      negativeTtlSeconds: config.negativeCacheTtlSeconds,
      breakerMs: 1000,
      maxValueBytes: MAX_CACHE_VALUE_BYTES,
    },
    metrics,
    (operation, err) => log.warn({ operation, err: errorSummary(err) }, "cache unavailable; reading PostgreSQL"),
    options.cacheHooks,
  );
  const outbox = new Outbox(stores.db);
  const eventChannels = channels(config.redisKeyPrefix);
  const publisher = new EventPublisher(stores.bus, eventChannels, outbox, metrics, log);
  const hub = new WatchHub(
    outbox,
    stores.bus,
    eventChannels,
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
    new SqlProfileStore(stores.db, outbox),
    cache,
    cacheKeys(config.redisKeyPrefix),
    async (event) => {
      hub.wake(event.eventId);
      await publisher.publishCommitted(event);
    },
    metrics,
    log,
    { profileTtlSeconds: config.profileCacheTtlSeconds, preferencesTtlSeconds: config.preferencesCacheTtlSeconds },
  );

  const verifier = options.verifier ?? new JoseTokenVerifier(config.jwt);
  const handler = nodeAdapter({
    log,
    routes: (router) => {
      router.service(ProfileService, { ...profileHandlers(profiles), watchProfileEvents: watchHandler(hub) });
    },
    contextValues: (req) => createContextValues().set(nodeRequestKey, req),
    interceptors: [rpcObserver(metrics, log), authInterceptor(verifier, new Set([ProfileService.typeName]))],
    readMaxBytes: config.readMaxBytes,
  });

  return {
    config,
    metrics,
    profiles,
    stores,
    hub,
    relay,
    handler,
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
      await hub.shutdown(0);
      await relay.stop();
      await publisher.close();
      await Promise.allSettled([stores.cache.close(), stores.bus.close()]);
      await stores.db.close();
    },
  };
}

async function openStores(config: Config, log: Logger): Promise<Stores> {
  const db = new PgDatabase({
    connectionString: requireSetting(config.databaseUrl, "DATABASE_URL"),
    max: config.dbPoolSize,
    statementTimeoutMs: config.dbStatementTimeoutMs,
  });
  const redis = createRedisClient({ url: requireSetting(config.redisUrl, "REDIS_URL"), cluster: config.redisCluster });
  if (!(await waitUntilReady(redis, 2000))) {
    log.warn("Redis is not reachable yet; serving from PostgreSQL until it is");
  }
  return {
    db,
    cache: new RedisCacheStore(redis, config.redisTimeoutMs),
    bus: new RedisEventBus(redis, config.redisTimeoutMs),
  };
}

function requireSetting(value: string | undefined, name: string): string {
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
}
