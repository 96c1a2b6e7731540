// Composition root: turns a Config into a running set of parts. Nothing else
// constructs adapters, so tests build the same app the binary runs.

import type * as http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import type { Config } from "./config/config.js";
import type { TokenVerifier } from "./auth/token-verifier.js";
import { JoseTokenVerifier } from "./auth/token-verifier.js";
import { CachingTokenVerifier } from "./auth/token-cache.js";
import { EventPublisher } from "./events/publisher.js";
import { errorSummary, type Logger } from "./log/logger.js";
import { Metrics } from "./metrics/metrics.js";
import { CacheAside, MAX_CACHE_VALUE_BYTES, type CacheAsideHooks } from "./profiles/cache-aside.js";
import { cacheKeys, channels } from "./profiles/cache-keys.js";
import { profileHandlers } from "./profiles/handlers.js";
import { Profiles } from "./profiles/profiles.js";
import { SqlProfileStore } from "./profiles/repository.js";
import { authInterceptor } from "./server/auth-interceptor.js";
import { rpcObserver } from "./server/rpc-observer.js";
import { watchUnimplemented } from "./events/watch-handler.js";
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
  /** The HTTP/2 request handler serving gRPC, gRPC-Web and Connect. */
  readonly handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
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
  const publisher = new EventPublisher(stores.bus, channels(config.redisKeyPrefix), metrics, log);
  const profiles = new Profiles(
    new SqlProfileStore(stores.db),
    cache,
    cacheKeys(config.redisKeyPrefix),
    publisher,
    metrics,
    log,
    { profileTtlSeconds: config.profileCacheTtlSeconds, preferencesTtlSeconds: config.preferencesCacheTtlSeconds },
  );

  const verifier = options.verifier ?? new CachingTokenVerifier(new JoseTokenVerifier(config.jwt));
  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(ProfileService, { ...profileHandlers(profiles), watchProfileEvents: watchUnimplemented });
    },
    interceptors: [rpcObserver(metrics, log), authInterceptor(verifier, new Set([ProfileService.typeName]))],
    readMaxBytes: config.readMaxBytes,
  });

  return {
    config,
    metrics,
    profiles,
    stores,
    handler,
    async close() {
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
