import type { DescMethod } from "@bufbuild/protobuf";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { DEFAULT_SAMPLE_SIZE, DEFAULT_SCAN_BUDGET, type CacheStats } from "./cache-stats.js";
import { RefreshedValue, unknownAfter } from "./refreshed-value.js";
import { allCodes, codeName, rpcLabels } from "./rpc-labels.js";

/**
 * The cache_type label values, exported at 0 from startup. They are
 * cache/'s CacheType, restated because metrics/ imports nothing above it.
 */
const cacheTypes = ["profile", "preferences"] as const;
type CacheType = (typeof cacheTypes)[number];
/**
 * The `operation` label values of redis_fallbacks_total: the cache calls
 * CacheAside makes, and `suspect`, reads of keys whose invalidation failed here.
 */
const cacheOperations = ["get", "fill", "poll", "suspect"] as const;
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
  readonly apiResponseTime = new Histogram({
    name: "api_response_time_seconds",
    help: "API response time",
    labelNames: ["endpoint", "cache_status"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly redisFallbacks = new Counter({
    name: "redis_fallbacks_total",
    help: "Reads that skipped or gave up on Redis (error, timeout, open breaker, or a key whose invalidation failed here) and were answered by PostgreSQL",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });
  readonly invalidationFailures = new Counter({
    name: "cache_invalidation_failures_total",
    help: "Writes whose cache invalidation (DEL) failed; the relay retries it until it lands",
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
  readonly cacheStaleServed = new Counter({
    name: "cache_stale_served_total",
    help: "Keys answered from a grace copy (CACHE_GRACE_SECONDS) because PostgreSQL could not be reached",
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
    help: "Events the relay finished (DEL and PUBLISH) because their writer could not (crash, Redis outage, failover)",
    registers: [this.registry],
  });
  readonly unhandledRejections = new Counter({
    name: "unhandled_rejections_total",
    help: "Promise rejections nobody handled, each logged at error level; always a bug. The process keeps running",
    registers: [this.registry],
  });
  readonly watchersConnected = new Gauge({
    name: "watchers_connected",
    help: "Open WatchProfileEvents streams on this instance",
    registers: [this.registry],
  });

  // Redis' eviction settings, read at startup and every REDIS_MEMORY_CHECK_INTERVAL_SECONDS (EvictionPolicyWatch).
  readonly redisMaxmemoryPolicy = new Gauge({
    name: "redis_maxmemory_policy",
    help: "1 for each Redis master's maxmemory-policy (CONFIG GET, or INFO memory where CONFIG is refused; policy=unknown when neither says). Absent while Redis cannot be read",
    labelNames: ["node", "policy"] as const,
    registers: [this.registry],
  });
  readonly redisUsedMemoryBytes = new Gauge({
    name: "redis_used_memory_bytes",
    help: "used_memory of each Redis master (INFO memory), as of the last check",
    labelNames: ["node"] as const,
    registers: [this.registry],
  });
  readonly redisMaxmemoryBytes = new Gauge({
    name: "redis_maxmemory_bytes",
    help: "maxmemory of each Redis master (INFO memory), as of the last check; 0 means no limit",
    labelNames: ["node"] as const,
    registers: [this.registry],
  });

  // The consistency checker (CONSISTENCY_CHECK_INTERVAL_MS; see src/consistency/).
  readonly consistencyChecks = new Counter({
    name: "cache_consistency_checks_total",
    help: "Cached keys the consistency checker compared with PostgreSQL (keys with a write in flight are not counted)",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
  });
  readonly inconsistencies = new Counter({
    name: "cache_inconsistencies_total",
    help: "Cached keys found older than PostgreSQL's committed row with no write to them in flight, confirmed by a second look",
    labelNames: ["cache_type"] as const,
    registers: [this.registry],
  });
  readonly inconsistencyBehind = new Histogram({
    name: "cache_inconsistency_behind_seconds",
    help: "For each inconsistency: seconds from the commit of the newest change the cached value lacks to the check",
    labelNames: ["cache_type"] as const,
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 86_400],
    registers: [this.registry],
  });
  readonly consistencyCheckErrors = new Counter({
    name: "cache_consistency_check_errors_total",
    help: "Consistency check rounds that could not run (PostgreSQL or Redis did not answer)",
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
      const rate = this.cacheStats && (await unknownAfter(this.cacheStats.keyspaceHitRate(), CACHE_STATS_TIMEOUT_MS));
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

  // Prometheus advises exporting every series whose labels are known in
  // advance at 0 from startup: otherwise a series appears only at its first
  // increment, and rate(), increase() and alerts see nothing before it.
  constructor() {
    for (const cache_type of cacheTypes) {
      for (const counter of [
        this.cacheHits,
        this.cacheMisses,
        this.cacheFillsRejected,
        this.cacheValuesTooLarge,
        this.cacheStaleServed,
        this.dbLoads,
      ]) {
        counter.inc({ cache_type }, 0);
      }
    }
    for (const operation of cacheOperations) this.redisFallbacks.inc({ operation }, 0);
    for (const cache_type of cacheTypes) {
      this.consistencyChecks.inc({ cache_type }, 0);
      this.inconsistencies.inc({ cache_type }, 0);
      this.inconsistencyBehind.zero({ cache_type });
    }
  }

  /**
   * Exports the per-RPC series of every method served at 0 (every code for
   * grpc_server_handled_total), as go-grpc-prometheus' InitializeMetrics does.
   */
  initializeRpcs(methods: readonly DescMethod[]): void {
    for (const method of methods) {
      const rpc = rpcLabels(method);
      this.grpcStarted.inc(rpc, 0);
      for (const code of allCodes) this.grpcHandled.inc({ ...rpc, grpc_code: codeName(code) }, 0);
      this.grpcHandlingSeconds.zero(rpc);
    }
  }

  /** Exports the per-channel event series at 0. */
  initializeChannels(channels: readonly string[]): void {
    for (const channel of channels) {
      this.eventsPublished.inc({ channel }, 0);
      this.eventPublishFailures.inc({ channel }, 0);
    }
  }

  collectDefaults(): void {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Reads redis_keyspace_hit_rate and cache_size_bytes from `stats`, for the keys under `prefixes`. */
  observeCache(stats: CacheStats | undefined, prefixes: Readonly<Record<CacheType, string>>): void {
    this.cacheStats = stats;
    this.cachePrefixes = cacheTypes.map((t) => prefixes[t]);
    this.cacheSizes =
      stats &&
      new RefreshedValue(
        () => stats.bytesByPrefix(this.cachePrefixes),
        CACHE_SIZE_MAX_AGE_MS,
        CACHE_STATS_TIMEOUT_MS * 4,
      );
  }
}
