// Composition root: turns a Config into a running set of parts. Nothing else
// constructs adapters, so tests build the same app the binary runs.

import type * as http2 from "node:http2";
import { setMaxListeners } from "node:events";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import type { Config } from "./config/config.js";
import { JoseTokenVerifier } from "./auth/token-verifier.js";
import { CachingTokenVerifier } from "./auth/token-cache.js";
import { EventPublisher } from "./events/publisher.js";
import type { Logger } from "./log/logger.js";
import { Metrics } from "./metrics/metrics.js";
import { CacheAside, type CacheAsideOptions } from "./cache/cache-aside.js";
import { channels } from "./events/channels.js";
import { cacheKeys, type CacheKeys } from "./cache/cache-keys.js";
import { Profiles } from "./profiles/profiles.js";
import { SuspectKeys } from "./cache/suspect-keys.js";
import { warmUp, type WarmupResult } from "./profiles/warmup.js";
import { ProfileRepository } from "./profiles/repository.js";
import { Outbox } from "./events/outbox.js";
import { EventRelay, type EventRelayOptions } from "./events/relay.js";
import { WatchHub, type WatchHubSettings } from "./events/watch-hub.js";
import { WatchSlots } from "./events/watch-slots.js";
import { ChangeFeed } from "./events/change-feed.js";
import { HealthStatus, ServingStatus } from "./server/health.js";
import { Calls } from "./api/call.js";
import { RpcObserver } from "./api/observe.js";
import { profileApi } from "./api/service.js";
import { Code, RpcError } from "./api/status.js";
import { apiServices, connectTransport } from "./server/connect-transport.js";
import { grpcTransport, type GrpcTransport } from "./server/grpc-transport.js";
import { migrate } from "./store/migrations.js";
import { openStores, openWarmupSource, usesRedis, type Stores } from "./store/open-stores.js";
import { UnfinishedEvents } from "./events/unfinished-events.js";
import { ConsistencyChecker } from "./consistency/consistency-checker.js";
import { EvictionPolicyWatch } from "./store/eviction-policy-watch.js";
import { resolveDevSecret } from "./auth/dev-secret.js";

export interface AppOptions {
  config: Config;
  log: Logger;
  /** Wraps the stores the config opened (tests count queries and round trips this way). */
  decorateStores?: (stores: Stores) => Stores;
  /** Test seam: failed invalidations tracked one by one before every read bypasses the cache. */
  maxTrackedFailures?: number;
}

export interface App {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly profiles: Profiles;
  readonly stores: Stores;
  readonly hub: WatchHub;
  readonly relay: EventRelay;
  /** Samples cached keys against PostgreSQL every CONSISTENCY_CHECK_INTERVAL_MS (off by default); runOnce() any time. */
  readonly consistency: ConsistencyChecker;
  /** Redis' eviction settings, read at startup and periodically; undefined without Redis. */
  readonly eviction: EvictionPolicyWatch | undefined;
  /** grpc.health.v1 statuses: SERVING once migrations ran; the owner keeps them current. */
  readonly health: HealthStatus;
  /** Which parts run embedded, and the development signing secret when no JWT setting is given. */
  readonly embedded: { database: boolean; cache: boolean; devSecret: string | undefined };
  /** The request handler of the Connect port (Connect, gRPC-Web, and gRPC too). */
  readonly handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  /** The grpc-js server of the gRPC port, and its calls. */
  readonly grpc: GrpcTransport;
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
  const eventChannels = channels(config.redisKeyPrefix);
  metrics.observeCache(stores.cacheStats, { profile: keys.profile(""), preferences: keys.preferences("") });
  const health = new HealthStatus([ProfileService.typeName]);
  health.setAll(ServingStatus.SERVING);

  // Keys this replica failed to invalidate: its own reads of them go to PostgreSQL until a DEL lands.
  const suspect = new SuspectKeys(options.maxTrackedFailures);
  const cache = new CacheAside({ store: stores.cache, metrics, suspect, log }, cacheAsideSettings(config));

  const outbox = new Outbox(stores.db);
  const hub = new WatchHub(outbox, watchHubSettings(config), metrics, log);
  const unfinished = new UnfinishedEvents(suspect, options.maxTrackedFailures);
  const shared = { outbox, unfinished, suspect, metrics, log };
  const publisher = new EventPublisher(
    { ...shared, cache, bus: stores.bus, keys, channels: eventChannels, localWatchers: hub },
    { publishWaitsForInvalidation: config.redisCluster },
  );
  const relay = new EventRelay({ ...shared, publisher }, relaySettings(config));
  const profiles = new Profiles(
    { repository: new ProfileRepository(stores.db), cache, keys, commits: publisher },
    { profileTtlSeconds: config.profileCacheTtlSeconds, preferencesTtlSeconds: config.preferencesCacheTtlSeconds },
  );
  const feed = new ChangeFeed(stores.bus, eventChannels, log);
  await hub.start();
  feed.add(hub);
  await feed.start();
  relay.start();
  const { consistency, eviction } = startChecks(config, stores, keys, metrics, log);

  const devSecret = developmentSecret(config);
  const shutdown = new AbortController();
  // Every call in flight links its own signal to this one: many listeners are expected.
  setMaxListeners(0, shutdown.signal);
  const { handler, grpc } = transports({
    config,
    profiles,
    hub,
    health,
    metrics,
    log,
    devSecret,
    shutdown: shutdown.signal,
  });
  metrics.initializeChannels(Object.values(eventChannels));

  return {
    config,
    metrics,
    profiles,
    stores,
    hub,
    relay,
    consistency,
    eviction,
    health,
    embedded: { database: config.databaseUrl === undefined, cache: !usesRedis(config), devSecret },
    handler,
    grpc,
    abortInFlight: () => {
      const reason = new RpcError("the server is shutting down; retry on another instance", Code.Unavailable);
      shutdown.abort(reason);
      grpc.calls.abortAll(reason);
    },
    endStreams: (graceMs) => hub.shutdown(graceMs),
    warmUp: () =>
      warmUp(
        { cache, entity: profiles.profileEntity, openIdSource: () => openWarmupSource(config.warmup, stores.db), log },
        config.warmup,
      ),
    async close() {
      health.shutdown();
      eviction?.stop();
      await consistency.stop();
      await hub.shutdown(0);
      await feed.stop();
      await relay.stop();
      await publisher.close();
      await Promise.allSettled([stores.cache.close(), stores.bus.close()]);
      await stores.db.close();
    },
  };
}

/** The consistency checker (off unless CONSISTENCY_CHECK_INTERVAL_MS) and, with Redis, the eviction policy watch. */
function startChecks(config: Config, stores: Stores, keys: CacheKeys, metrics: Metrics, log: Logger) {
  const consistency = new ConsistencyChecker(stores.db, stores.cache, keys, metrics, log, config.consistency);
  consistency.start();
  const eviction =
    stores.memoryPolicy &&
    new EvictionPolicyWatch(stores.memoryPolicy, metrics, log, { intervalMs: config.redisMemoryCheckIntervalMs });
  eviction?.start();
  return { consistency, eviction };
}

/** With no JWT setting (development only; production refuses to start), a generated secret kept under DATA_DIR. */
function developmentSecret(config: Config): string | undefined {
  if (config.jwt.secret !== undefined || config.jwt.jwksUrl !== undefined) return undefined;
  return resolveDevSecret(config.dataDir);
}

/**
 * The two transports over one API: grpc-js for the gRPC protocol on PORT,
 * Connect-ES for Connect and gRPC-Web on HTTP_PORT. Health and reflection on
 * both, outside auth (which protects only the API's services).
 */
function transports(o: {
  config: Config;
  profiles: Profiles;
  hub: WatchHub;
  health: HealthStatus;
  metrics: Metrics;
  log: Logger;
  devSecret: string | undefined;
  shutdown: AbortSignal;
}): { handler: App["handler"]; grpc: GrpcTransport } {
  const { config, metrics, log, health } = o;
  const verifier = new CachingTokenVerifier(
    new JoseTokenVerifier({ ...config.jwt, secret: config.jwt.secret ?? o.devSecret }),
  );
  const rpc = {
    api: profileApi({ profiles: o.profiles, hub: o.hub, slots: new WatchSlots(config.watchLimits) }),
    calls: new Calls(verifier),
    observer: new RpcObserver(metrics, log, apiServices),
    shutdownSignal: o.shutdown,
    health,
    extraFiles: [file_google_rpc_error_details],
    readMaxBytes: config.readMaxBytes,
    log,
  };
  const handler = connectTransport(rpc);
  const grpc = grpcTransport({ ...rpc, limits: config.serverLimits, connectionAge: config.connectionAge });
  metrics.initializeRpcs(handler.methods);
  return { handler, grpc };
}

// How the settings a Config reads map onto the components' options (the rest keep their defaults).

function watchHubSettings(config: Config): WatchHubSettings {
  return {
    pollIntervalMs: config.eventPollIntervalMs,
    progressIntervalMs: config.watchProgressIntervalSeconds * 1000,
    queueSize: config.watchQueueSize,
    // A quarter of the pool at most, so resuming watchers never crowd out ordinary calls.
    catchUp: { concurrency: Math.max(1, Math.floor(config.dbPoolSize / 4)) },
  };
}

function relaySettings(config: Config): Partial<EventRelayOptions> {
  return {
    intervalMs: config.eventRelayIntervalMs,
    graceMs: config.eventRelayGraceMs,
    retentionHours: config.eventRetentionHours,
    pruneIntervalMs: config.eventPruneIntervalSeconds * 1000,
  };
}

function cacheAsideSettings(config: Config): Partial<CacheAsideOptions> {
  return {
    leaseTtlMs: config.cacheLeaseTtlMs,
    leaseWaitMs: config.cacheLeaseWaitMs,
    negativeTtlSeconds: config.negativeCacheTtlSeconds,
    graceSeconds: config.cacheGraceSeconds,
  };
}
