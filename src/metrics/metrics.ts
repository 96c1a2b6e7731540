import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CacheStats } from "../store/cache-stats.js";
import { DEFAULT_SAMPLE_SIZE, DEFAULT_SCAN_BUDGET } from "../store/redis-cache-stats.js";
import { RefreshedValue, withTimeout } from "./refreshed-value.js";

export type CacheType = "profile" | "preferences";
export type CacheStatus = "hit" | "miss" | "bypass";
/** go-grpc-prometheus' grpc_type values. */
export type GrpcType = "unary" | "client_stream" | "server_stream" | "bidi_stream";

const cacheTypes: readonly CacheType[] = ["profile", "preferences"];
const CACHE_SIZE_MAX_AGE_MS = 30_000;
const CACHE_STATS_TIMEOUT_MS = 500;

/** Every metric the service exports, on a registry of its own (one per app instance). */
export class Metrics {
  readonly registry = new Registry();

  // The seed's names and labels.
  readonly cacheHits = new Counter({
    name: "cache_hits_total",
    help: "Total cache hits",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
  });
  readonly cacheMisses = new Counter({
    name: "cache_misses_total",
    help: "Total cache misses",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
  });
  readonly earlyRefreshes = new Counter({
    name: "cache_early_refreshes_total",
    help: "Keys refilled before they expired (XFetch early refresh)",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
  });
  readonly nearCacheHits = new Counter({
    name: "near_cache_hits_total",
    help: "Reads answered by the in-process near cache; cache_hits_total counts only the hits Redis answered",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
  });
  readonly apiResponseTime = new Histogram({
    name: "api_response_time_seconds",
    help: "API response time",
    labelNames: ["endpoint", "cache_status"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly redisFallbacks = new Counter({
    name: "redis_fallbacks_total",
    help: "Reads that skipped or gave up on Redis (error, timeout, or open breaker) and were answered by PostgreSQL",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });
  readonly invalidationFailures = new Counter({
    name: "cache_invalidation_failures_total",
    help: "Writes whose cache invalidation failed; the key may serve stale data until its TTL",
    registers: [this.registry],
  });
  readonly cacheFillsRejected = new Counter({
    name: "cache_fills_rejected_total",
    help: "Cache fills dropped because their lease was voided by a write (the stale-fill race) or had expired",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
  });
  readonly cacheValuesTooLarge = new Counter({
    name: "cache_values_too_large_total",
    help: "Values not cached because they exceed the 1 MiB limit",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
  });
  readonly dbLoads = new Counter({
    name: "cache_db_loads_total",
    help: "SQL queries made to fill cache misses",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
  });
  readonly eventsPublished = new Counter({
    name: "events_published_total",
    help: "Events published on the Redis bus",
    labelNames: ["channel"] as const,
    registers: [this.registry],
  });
  readonly eventPublishFailures = new Counter({
    name: "event_publish_failures_total",
    help: "Event publishes that failed",
    labelNames: ["channel"] as const,
    registers: [this.registry],
  });

  // Per-RPC metrics, with go-grpc-prometheus' names, labels and help.
  readonly grpcStarted = new Counter({
    name: "grpc_server_started_total",
    help: "Total number of RPCs started on the server.",
    labelNames: ["grpc_service", "grpc_method", "grpc_type"] as const,
    registers: [this.registry],
  });
  readonly grpcHandled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: ["grpc_service", "grpc_method", "grpc_type", "grpc_code"] as const,
    registers: [this.registry],
  });
  readonly grpcHandlingSeconds = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: ["grpc_service", "grpc_method", "grpc_type"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly eventsRelayed = new Counter({
    name: "events_relayed_total",
    help: "Events published by the relay because their writer did not publish them (crash or Redis outage)",
    registers: [this.registry],
  });
  readonly watchersConnected = new Gauge({
    name: "watchers_connected",
    help: "Open WatchProfileEvents streams on this instance",
    registers: [this.registry],
  });

  // Read on scrape from the cache server (see observeCache).
  private cacheStats: CacheStats | undefined;
  private cachePrefixes: readonly string[] = [];
  private cacheSizes: RefreshedValue<number[]> | undefined;

  readonly redisKeyspaceHitRate = new Gauge({
    name: "redis_keyspace_hit_rate",
    help:
      "The seed's hit rate: keyspace_hits / (keyspace_hits + keyspace_misses) from Redis INFO stats, read on scrape. " +
      "It counts every lookup on the Redis server, not only this service's. NaN when Redis is unreachable, " +
      "has seen no lookups, or the cache is in-process.",
    registers: [this.registry],
    collect: async () => {
      const rate = this.cacheStats && (await withTimeout(this.cacheStats.keyspaceHitRate(), CACHE_STATS_TIMEOUT_MS));
      this.redisKeyspaceHitRate.set(rate ?? Number.NaN);
    },
  });
  readonly cacheHitRatio = new Gauge({
    name: "cache_hit_ratio",
    help: "This instance's cache_hits_total / (cache_hits_total + cache_misses_total); absent before the first lookup",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
    collect: async () => {
      const [hits, misses] = await Promise.all([this.cacheHits.get(), this.cacheMisses.get()]);
      const count = (values: typeof hits.values, type: CacheType) =>
        values.find((v) => v.labels.cache_type === type)?.value ?? 0;
      this.cacheHitRatio.reset();
      for (const type of cacheTypes) {
        const h = count(hits.values, type);
        const total = h + count(misses.values, type);
        if (total > 0) this.cacheHitRatio.set({ cache_type: type }, h / total);
      }
    },
  });
  readonly cacheSizeBytes = new Gauge({
    name: "cache_size_bytes",
    help:
      `Approximate bytes held in the cache per type, refreshed at most every ${CACHE_SIZE_MAX_AGE_MS / 1000} s. ` +
      `Redis: MEMORY USAGE of up to ${DEFAULT_SAMPLE_SIZE} keys per type found by SCAN over at most ` +
      `${DEFAULT_SCAN_BUDGET} keys per node, scaled to the node's DBSIZE (exact when the scan covers every key). ` +
      "In-process cache: exact UTF-8 bytes of keys and values. Absent while the cache cannot be read.",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
    collect: async () => {
      const sizes = await this.cacheSizes?.get();
      this.cacheSizeBytes.reset();
      if (sizes === undefined) return;
      cacheTypes.forEach((type, i) => this.cacheSizeBytes.set({ cache_type: type }, sizes[i] ?? 0));
    },
  });

  collectDefaults(): void {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Reads redis_keyspace_hit_rate and cache_size_bytes from `stats`, for the keys under `prefixes`. */
  observeCache(stats: CacheStats | undefined, prefixes: Readonly<Record<CacheType, string>>): void {
    this.cacheStats = stats;
    this.cachePrefixes = cacheTypes.map((t) => prefixes[t]);
    this.cacheSizes =
      stats &&
      new RefreshedValue(() => stats.bytesByPrefix(this.cachePrefixes), CACHE_SIZE_MAX_AGE_MS, CACHE_STATS_TIMEOUT_MS * 4);
  }
}
