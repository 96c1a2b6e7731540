import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type CacheType = "profile" | "preferences";
export type CacheStatus = "hit" | "miss" | "bypass";

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

  collectDefaults(): void {
    collectDefaultMetrics({ register: this.registry });
  }
}
