// One suite, three implementations: RedisCacheStore on a single node and on a
// real Redis Cluster (3 masters, 3 replicas, with a password), where keys
// live on different nodes; and the in-process store, which must keep every
// promise RedisCacheStore keeps, or the cache-aside logic above it is wrong.

import { setTimeout as sleep } from "node:timers/promises";
import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ABSENT, parseGraceLease, type CacheStore } from "../src/store/cache-store.js";
import { FailurePolicy, GuardedCacheStore } from "../src/store/failure-policy.js";
import { MemoryCacheStore } from "../src/store/memory-cache-store.js";
import { RedisCacheStore } from "../src/store/redis-cache-store.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { PrivateRedisCluster } from "./support/private-redis-cluster.js";
import { testRedisUrl, uniqueKeyPrefix } from "./support/servers.js";

interface Subject {
  store: CacheStore;
  /** A key no other test uses. */
  key(): string;
}

let redis: Redis | Cluster;
let cluster: PrivateRedisCluster;
let onCluster: Cluster;
beforeAll(async () => {
  redis = createRedisClient({ url: testRedisUrl, cluster: false });
  cluster = await PrivateRedisCluster.start({ password: "contract" });
  onCluster = createRedisClient({ url: cluster.seedList, cluster: true }) as Cluster;
  expect(await waitUntilReady(redis, 5000)).toBe(true);
  expect(await waitUntilReady(onCluster, 5000)).toBe(true);
});
afterAll(async () => {
  redis?.disconnect();
  onCluster?.disconnect();
  await cluster?.stop();
});

function keyMaker(prefix: string): () => string {
  let n = 0;
  return () => `${prefix}k${++n}`;
}

/** As the service runs it: under the timeout and the breaker. */
const guarded = (store: CacheStore) => new GuardedCacheStore(store, new FailurePolicy({ timeoutMs: 1000 }));

const implementations: [string, () => Subject][] = [
  [
    "RedisCacheStore",
    () => ({ store: guarded(new RedisCacheStore(redis)), key: keyMaker(uniqueKeyPrefix("cache_contract")) }),
  ],
  [
    "RedisCacheStore on a cluster",
    () => ({ store: guarded(new RedisCacheStore(onCluster)), key: keyMaker(uniqueKeyPrefix("cache_contract")) }),
  ],
  ["MemoryCacheStore", () => ({ store: new MemoryCacheStore({ maxBytes: 1024 * 1024 }), key: keyMaker("") })],
];

describe.concurrent.each(implementations)("%s", (_name, make) => {
  let s: Subject;
  beforeAll(() => {
    s = make();
  });

  it("reads absent keys as null, and an empty batch as empty", async () => {
    expect(await s.store.getMany([s.key(), s.key()])).toEqual([null, null]);
    expect(await s.store.getMany([])).toEqual([]);
  });

  it("grants a lease on an absent key and stores it", async () => {
    const k = s.key();
    expect(await s.store.acquireLeases([k], "~lease:a", 5000)).toEqual([null]);
    expect(await s.store.getMany([k])).toEqual(["~lease:a"]);
  });

  it("answers a present key with its value and leaves it unchanged", async () => {
    const [leased, filled, fresh] = [s.key(), s.key(), s.key()];
    await s.store.acquireLeases([leased], "~lease:first", 5000);
    await s.store.acquireLeases([filled], "~lease:f", 5000);
    await s.store.fillLeased([{ key: filled, lease: "~lease:f", value: "v", ttlSeconds: 60 }]);

    expect(await s.store.acquireLeases([leased, filled, fresh], "~lease:second", 5000)).toEqual([
      "~lease:first",
      "v",
      null,
    ]);
    expect(await s.store.getMany([leased, filled, fresh])).toEqual(["~lease:first", "v", "~lease:second"]);
  });

  it("grants exactly one of many concurrent leases on a key", async () => {
    const k = s.key();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.store.acquireLeases([k], `~lease:${i}`, 5000)),
    );
    const granted = answers.filter(([a]) => a === null);
    expect(granted).toHaveLength(1);
    const winner = answers.findIndex(([a]) => a === null);
    for (const [a] of answers) if (a !== null) expect(a).toBe(`~lease:${winner}`);
  });

  it("fills only while the key holds the lease", async () => {
    const [mine, theirs, absent] = [s.key(), s.key(), s.key()];
    await s.store.acquireLeases([mine, theirs], "~lease:mine", 5000);
    await s.store.delete([theirs]);
    await s.store.acquireLeases([theirs], "~lease:theirs", 5000);

    const landed = await s.store.fillLeased([
      { key: mine, lease: "~lease:mine", value: "mine", ttlSeconds: 60 },
      { key: theirs, lease: "~lease:mine", value: "stale", ttlSeconds: 60 },
      { key: absent, lease: "~lease:mine", value: "stale", ttlSeconds: 60 },
    ]);
    expect(landed).toEqual([true, false, false]);
    expect(await s.store.getMany([mine, theirs, absent])).toEqual(["mine", "~lease:theirs", null]);
  });

  it("does not fill over a value, even one the same lease wrote", async () => {
    const k = s.key();
    await s.store.acquireLeases([k], "~lease:x", 5000);
    expect(await s.store.fillLeased([{ key: k, lease: "~lease:x", value: "one", ttlSeconds: 60 }])).toEqual([true]);
    expect(await s.store.fillLeased([{ key: k, lease: "~lease:x", value: "two", ttlSeconds: 60 }])).toEqual([false]);
    expect(await s.store.getMany([k])).toEqual(["one"]);
  });

  it("releases a lease with ttlSeconds 0", async () => {
    const k = s.key();
    await s.store.acquireLeases([k], "~lease:r", 5000);
    expect(await s.store.fillLeased([{ key: k, lease: "~lease:r", value: "", ttlSeconds: 0 }])).toEqual([true]);
    expect(await s.store.getMany([k])).toEqual([null]);
    expect(await s.store.acquireLeases([k], "~lease:next", 5000)).toEqual([null]);
  });

  it("voids a lease on delete, so a fill taken before the delete never lands", async () => {
    const k = s.key();
    await s.store.acquireLeases([k], "~lease:old", 5000);
    await s.store.delete([k]);
    expect(await s.store.fillLeased([{ key: k, lease: "~lease:old", value: "stale", ttlSeconds: 60 }])).toEqual([
      false,
    ]);
    expect(await s.store.getMany([k])).toEqual([null]);
  });

  it("deletes several keys, and accepts an empty delete", async () => {
    const [a, b] = [s.key(), s.key()];
    await s.store.acquireLeases([a, b], "~lease:d", 5000);
    await s.store.delete([a, b]);
    await s.store.delete([]);
    expect(await s.store.getMany([a, b])).toEqual([null, null]);
  });

  it("expires a lease after its TTL, so a dead filler blocks no one for longer", async () => {
    const k = s.key();
    await s.store.acquireLeases([k], "~lease:dead", 60);
    await sleep(150);
    expect(await s.store.getMany([k])).toEqual([null]);
    expect(await s.store.fillLeased([{ key: k, lease: "~lease:dead", value: "late", ttlSeconds: 60 }])).toEqual([
      false,
    ]);
    expect(await s.store.acquireLeases([k], "~lease:alive", 5000)).toEqual([null]);
  });

  it("expires a filled value after its TTL in seconds", async () => {
    const [short, long] = [s.key(), s.key()];
    await s.store.acquireLeases([short, long], "~lease:t", 5000);
    await s.store.fillLeased([
      { key: short, lease: "~lease:t", value: "short", ttlSeconds: 1 },
      { key: long, lease: "~lease:t", value: "long", ttlSeconds: 60 },
    ]);
    expect(await s.store.getMany([short, long])).toEqual(["short", "long"]);
    await sleep(1150);
    expect(await s.store.getMany([short, long])).toEqual([null, "long"]);
  });
});

// Grace (CACHE_GRACE_SECONDS): values are filled with their TTL plus the
// grace; one with at most `graceMs` left is past its fresh time, and the
// read-or-lease call turns it into a grace lease that carries it.
describe.concurrent.each(implementations)("%s with grace", (_name, make) => {
  let s: Subject;
  beforeAll(() => {
    s = make();
  });
  const filled = async (key: string, value: string, ttlSeconds: number) => {
    await s.store.acquireLeases([key], "~lease:fill", 5000);
    expect(await s.store.fillLeased([{ key, lease: "~lease:fill", value, ttlSeconds }])).toEqual([true]);
  };

  it("answers a fresh value unchanged, and leases an absent key as without grace", async () => {
    const [fresh, absent] = [s.key(), s.key()];
    await filled(fresh, "v", 60);
    expect(await s.store.acquireLeases([fresh, absent], "~lease:g", 5000, 30_000)).toEqual(["v", null]);
    expect(await s.store.getMany([fresh, absent])).toEqual(["v", "~lease:g"]);
  });

  it("turns a value past its fresh time into a grace lease carrying it, which others see as a lease", async () => {
    const k = s.key();
    await filled(k, "old", 60);
    const [reply] = await s.store.acquireLeases([k], "~lease:g", 5000, 120_000);
    expect(parseGraceLease(reply!)).toMatchObject({ lease: "~lease:g", copy: "old" });
    expect(await s.store.getMany([k])).toEqual([reply]);
    // Another reader (another replica) finds the lease, copy included, and changes nothing.
    expect(await s.store.acquireLeases([k], "~lease:h", 5000, 120_000)).toEqual([reply]);
    expect(await s.store.acquireLeases([k], "~lease:h", 5000)).toEqual([reply]);
  });

  it("lets the grace lease's holder fill over it, and nobody else", async () => {
    const k = s.key();
    await filled(k, "old", 60);
    await s.store.acquireLeases([k], "~lease:g", 5000, 120_000);
    expect(await s.store.fillLeased([{ key: k, lease: "~lease:h", value: "x", ttlSeconds: 60 }])).toEqual([false]);
    expect(await s.store.fillLeased([{ key: k, lease: "~lease:g", value: "new", ttlSeconds: 60 }])).toEqual([true]);
    expect(await s.store.getMany([k])).toEqual(["new"]);
  });

  it("puts the grace copy back only while the key holds that grace lease", async () => {
    const [k, plain] = [s.key(), s.key()];
    await filled(k, "old", 60);
    await s.store.acquireLeases([k], "~lease:g", 5000, 120_000);
    expect(await s.store.restoreGrace([{ key: k, lease: "~lease:other" }])).toEqual([false]);
    expect(await s.store.restoreGrace([{ key: k, lease: "~lease:g" }])).toEqual([true]);
    expect(await s.store.getMany([k])).toEqual(["old"]);
    // Restored, it is still past its fresh time: the next reader leases it again.
    expect(parseGraceLease((await s.store.acquireLeases([k], "~lease:next", 5000, 120_000))[0]!)?.copy).toBe("old");
    // A plain lease has no copy to put back.
    await s.store.acquireLeases([plain], "~lease:p", 5000, 120_000);
    expect(await s.store.restoreGrace([{ key: plain, lease: "~lease:p" }])).toEqual([false]);
    expect(await s.store.getMany([plain])).toEqual(["~lease:p"]);
  });

  it("voids the grace copy on delete: a restore after it never lands", async () => {
    const k = s.key();
    await filled(k, "old", 60);
    await s.store.acquireLeases([k], "~lease:g", 5000, 120_000);
    await s.store.delete([k]);
    expect(await s.store.restoreGrace([{ key: k, lease: "~lease:g" }])).toEqual([false]);
    expect(await s.store.getMany([k])).toEqual([null]);
    // A reader after the delete gets a plain lease: nothing of the old value is left.
    expect(await s.store.acquireLeases([k], "~lease:after", 5000, 120_000)).toEqual([null]);
    expect(await s.store.restoreGrace([{ key: k, lease: "~lease:after" }])).toEqual([false]);
    expect(await s.store.getMany([k])).toEqual(["~lease:after"]);
  });

  it("lets another reader take a grace lease over once its lease time is up, with the same copy", async () => {
    const k = s.key();
    await filled(k, "old", 60);
    const [first] = await s.store.acquireLeases([k], "~lease:dead", 50, 120_000);
    expect(parseGraceLease(first!)?.lease).toBe("~lease:dead");
    await sleep(120);
    const [taken] = await s.store.acquireLeases([k], "~lease:late", 5000, 120_000);
    expect(parseGraceLease(taken!)).toMatchObject({ lease: "~lease:late", copy: "old" });
    expect(await s.store.fillLeased([{ key: k, lease: "~lease:dead", value: "x", ttlSeconds: 60 }])).toEqual([false]);
    expect(await s.store.restoreGrace([{ key: k, lease: "~lease:dead" }])).toEqual([false]);
    expect(await s.store.restoreGrace([{ key: k, lease: "~lease:late" }])).toEqual([true]);
    expect(await s.store.getMany([k])).toEqual(["old"]);
  });

  it("keeps the key's TTL through the grace lease and the restore: the copy goes when the grace ends", async () => {
    const k = s.key();
    await filled(k, "old", 1);
    await s.store.acquireLeases([k], "~lease:g", 60_000, 120_000);
    await s.store.restoreGrace([{ key: k, lease: "~lease:g" }]);
    await sleep(1150);
    expect(await s.store.getMany([k])).toEqual([null]);
  });

  it("gives markers no grace", async () => {
    const k = s.key();
    await filled(k, ABSENT, 60);
    expect(await s.store.acquireLeases([k], "~lease:g", 5000, 120_000)).toEqual([ABSENT]);
  });
});

describe.concurrent("MemoryCacheStore bounds", () => {
  it("evicts the least recently used entries to stay within maxBytes", async () => {
    const store = new MemoryCacheStore({ maxBytes: 10_000 });
    const fill = async (key: string) => {
      await store.acquireLeases([key], "~lease:z", 5000);
      await store.fillLeased([{ key, lease: "~lease:z", value: "x".repeat(996), ttlSeconds: 60 }]); // 1000 bytes with the key
    };
    for (let i = 0; i < 10; i++) await fill(`k00${i}`);
    expect(store.sizeBytes).toBe(10_000);
    await store.getMany(["k000"]); // now the most recently used
    await fill("k010");
    expect(store.sizeBytes).toBeLessThanOrEqual(10_000);
    const present = await store.getMany(["k000", "k001", "k010"]);
    expect(present.map((v) => v !== null)).toEqual([true, false, true]);
  });

  it("measures bytes per key prefix exactly, without expired entries", async () => {
    const store = new MemoryCacheStore({ maxBytes: 1024 * 1024 });
    await store.acquireLeases(["profile:1", "profile:2", "preferences:1", "other"], "L", 5000);
    await store.fillLeased([
      { key: "profile:1", lease: "L", value: "a".repeat(100), ttlSeconds: 60 },
      { key: "profile:2", lease: "L", value: "ü".repeat(10), ttlSeconds: 60 }, // 2 bytes each in UTF-8
      { key: "preferences:1", lease: "L", value: "b".repeat(50), ttlSeconds: 1 },
    ]);
    expect(await store.bytesByPrefix(["profile:", "preferences:"])).toEqual([9 + 100 + 9 + 20, 13 + 50]);
    await sleep(1100);
    expect(await store.bytesByPrefix(["profile:", "preferences:"])).toEqual([9 + 100 + 9 + 20, 0]);
    expect(await store.keyspaceHitRate()).toBeUndefined();
  });
});
