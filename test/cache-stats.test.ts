// The cache gauges: the seed's Redis hit rate and the sampled cache size, on a
// Redis of the test's own (so counts and sizes are known), the in-process
// store, and a Redis that is down.

import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../src/metrics/metrics.js";
import { MemoryCacheStore } from "../src/store/memory-cache-store.js";
import { RedisCacheStats } from "../src/store/redis-cache-stats.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { PrivateRedis } from "./support/private-redis.js";

let server: PrivateRedis;
let redis: Redis;

beforeAll(async () => {
  server = await PrivateRedis.start();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

const prefixes = { profile: "p:profile:", preferences: "p:preferences:" };

async function gauge(metrics: Metrics, name: string, cacheType?: string): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values as { value: number; labels: Record<string, string> }[] | undefined)?.find(
    (v) => cacheType === undefined || v.labels.cache_type === cacheType,
  )?.value;
}

describe("RedisCacheStats", () => {
  it("computes keyspace_hits / (keyspace_hits + keyspace_misses) from INFO, as the seed did", async () => {
    const stats = new RedisCacheStats(redis);
    await redis.flushall();
    await redis.config("RESETSTAT");
    expect(await stats.keyspaceHitRate()).toBeUndefined(); // no lookups yet
    await redis.set("k", "v");
    for (let i = 0; i < 3; i++) await redis.get("k");
    await redis.get("absent");
    expect(await stats.keyspaceHitRate()).toBe(0.75);
  });

  it("measures exactly when the scan covers every key, and only the keys under each prefix", async () => {
    await redis.flushall();
    const pipeline = redis.pipeline();
    for (let i = 0; i < 40; i++) pipeline.set(`${prefixes.profile}${i}`, "x".repeat(100 + i));
    for (let i = 0; i < 15; i++) pipeline.set(`${prefixes.preferences}${i}`, "y".repeat(500));
    for (let i = 0; i < 30; i++) pipeline.set(`other:profile:${i}`, "z".repeat(1000));
    await pipeline.exec();
    const truth = async (prefix: string) => {
      const keys = await redis.keys(`${prefix}*`);
      const usages = await Promise.all(keys.map((k) => redis.memory("USAGE", k)));
      return usages.reduce<number>((a, b) => a + (b ?? 0), 0);
    };

    const sizes = await new RedisCacheStats(redis, { sampleSize: 100 }).bytesByPrefix([
      prefixes.profile,
      prefixes.preferences,
    ]);
    expect(sizes).toEqual([await truth(prefixes.profile), await truth(prefixes.preferences)]);
  });

  it("extrapolates a bounded sample when the keyspace is larger than the scan budget", async () => {
    await redis.flushall();
    const pipeline = redis.pipeline();
    for (let i = 0; i < 3000; i++) pipeline.set(`${prefixes.profile}${i}`, "x".repeat(200));
    for (let i = 0; i < 3000; i++) pipeline.set(`unrelated:${i}`, "u");
    await pipeline.exec();
    const perKey = (await redis.memory("USAGE", `${prefixes.profile}0`))!;

    await redis.config("RESETSTAT");
    const [estimate] = await new RedisCacheStats(redis, { scanBudget: 500, sampleSize: 50 }).bytesByPrefix([
      prefixes.profile,
    ]);
    expect(estimate! / (perKey * 3000)).toBeGreaterThan(0.7);
    expect(estimate! / (perKey * 3000)).toBeLessThan(1.3);
    // Bounded: a few SCAN pages and at most 50 MEMORY USAGE calls, not 6000 lookups.
    const info = await redis.info("commandstats");
    const calls = (cmd: string) =>
      Number(
        info
          .split("\n")
          .find((line) => line.startsWith(`cmdstat_${cmd}:`))
          ?.match(/calls=(\d+)/)?.[1] ?? 0,
      );
    expect(calls("scan")).toBeGreaterThan(0);
    expect(calls("scan")).toBeLessThanOrEqual(3);
    expect(calls("memory|usage")).toBeGreaterThan(0);
    expect(calls("memory|usage")).toBeLessThanOrEqual(50);
  });
});

describe("cache gauges in Metrics", () => {
  it("reads the Redis gauges through observeCache, and leaves them NaN/absent once Redis is down", async () => {
    const own = await PrivateRedis.start();
    const client = createRedisClient({ url: own.url, cluster: false });
    try {
      expect(await waitUntilReady(client, 5000)).toBe(true);
      await client.set(`${prefixes.profile}1`, "v");
      await client.get(`${prefixes.profile}1`);
      const metrics = new Metrics();
      metrics.observeCache(new RedisCacheStats(client), prefixes);
      expect(await gauge(metrics, "redis_keyspace_hit_rate")).toBe(1);
      expect(await gauge(metrics, "cache_size_bytes", "profile")).toBeGreaterThan(0);
      expect(await gauge(metrics, "cache_size_bytes", "preferences")).toBe(0);

      await own.stop();
      const down = new Metrics();
      down.observeCache(new RedisCacheStats(client), prefixes);
      const started = performance.now();
      expect(await gauge(down, "redis_keyspace_hit_rate")).toBeNaN();
      expect(await gauge(down, "cache_size_bytes", "profile")).toBeUndefined();
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      client.disconnect();
      await own.stop();
    }
  });

  it("reports the in-process store's exact size, NaN for the Redis-only hit rate, and our own hit ratio", async () => {
    const store = new MemoryCacheStore({ maxBytes: 1024 * 1024 });
    await store.acquireLeases([`${prefixes.profile}a`], "L", 5000);
    await store.fillLeased([{ key: `${prefixes.profile}a`, lease: "L", value: "v".repeat(90), ttlSeconds: 60 }]);
    const metrics = new Metrics();
    metrics.observeCache(store, prefixes);
    metrics.cacheHits.inc({ cache_type: "profile" }, 3);
    metrics.cacheMisses.inc({ cache_type: "profile" }, 1);

    expect(await gauge(metrics, "cache_size_bytes", "profile")).toBe(`${prefixes.profile}a`.length + 90);
    expect(await gauge(metrics, "cache_size_bytes", "preferences")).toBe(0);
    expect(await gauge(metrics, "redis_keyspace_hit_rate")).toBeNaN();
    expect(await gauge(metrics, "cache_hit_ratio", "profile")).toBe(0.75);
    expect(await gauge(metrics, "cache_hit_ratio", "preferences")).toBeUndefined(); // no lookups yet
  });
});
