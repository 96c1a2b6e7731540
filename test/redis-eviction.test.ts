// Redis' eviction settings, and what happens when Redis is full, on private
// redis-servers: the policy is read and exported, noeviction is warned
// about, a full noeviction Redis degrades reads to PostgreSQL (never to
// errors), and under allkeys-lru an evicted lease never lets a stale fill land.

import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../src/metrics/metrics.js";
import type { CacheStore, LeasedFill } from "../src/store/cache-store.js";
import { EvictionPolicyWatch } from "../src/store/eviction-policy-watch.js";
import { RedisMemoryPolicy } from "../src/store/redis-eviction-policy.js";
import { captureLog } from "./support/captured-log.js";
import { settledCheck } from "./support/consistency.js";
import { HeldDatabase } from "./support/held-database.js";
import { PrivateRedis } from "./support/private-redis.js";
import { withPrivateRedis } from "./support/private-redis-hooks.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let token: string;
beforeAll(async () => {
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function usedMemory(client: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await client.info("memory"))![1]);
}

async function stat(client: Redis, name: string): Promise<number> {
  return Number(new RegExp(`^${name}:(\\d+)`, "m").exec(await client.info("stats"))![1]);
}

async function gauge(metric: Metrics["redisMaxmemoryPolicy"]) {
  return (await metric.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
}

describe("the eviction policy watch", () => {
  const r = withPrivateRedis();

  it("reads the policy and memory at startup and every interval, exports them, and warns once on noeviction", async () => {
    // redis-server's defaults: noeviction, but no maxmemory, so Redis never answers OOM.
    await r.client.config("SET", "maxmemory", "0");
    await r.client.config("SET", "maxmemory-policy", "noeviction");
    const { log, matching } = captureLog();
    const metrics = new Metrics();
    const node = `127.0.0.1:${r.server.port}`;
    const watch = new EvictionPolicyWatch(new RedisMemoryPolicy(r.client), metrics, log, { intervalMs: 100 });
    watch.start();
    try {
      await expect.poll(() => matching("Redis has no maxmemory").length).toBe(1);
      expect(matching("Redis maxmemory-policy is noeviction")).toEqual([]);
      await r.client.config("SET", "maxmemory", String(64 * 1024 * 1024));
      await expect.poll(() => matching("Redis maxmemory-policy is noeviction").length).toBe(1);
      await expect
        .poll(() => gauge(metrics.redisMaxmemoryPolicy))
        .toEqual([{ labels: { node, policy: "noeviction" }, value: 1 }]);
      expect(await gauge(metrics.redisMaxmemoryBytes)).toEqual([{ labels: { node }, value: 64 * 1024 * 1024 }]);
      const [used] = await gauge(metrics.redisUsedMemoryBytes);
      expect(used!.value).toBeGreaterThan(100_000);
      await sleep(500); // several more checks
      expect(matching("Redis maxmemory-policy is noeviction")).toHaveLength(1);
      expect(matching("Redis has no maxmemory")).toHaveLength(1);
      expect(matching("Redis maxmemory-policy is noeviction")[0]).toMatchObject({ redis: node, maxmemory: 64 << 20 });

      await r.client.config("SET", "maxmemory-policy", "allkeys-lru");
      await expect
        .poll(() => gauge(metrics.redisMaxmemoryPolicy))
        .toEqual([{ labels: { node, policy: "allkeys-lru" }, value: 1 }]);
      expect(matching("Redis maxmemory-policy changed")).toEqual([
        expect.objectContaining({ policy: "allkeys-lru", previous_policy: "noeviction" }),
      ]);
      // Back to noeviction: said again, since it is news again.
      await r.client.config("SET", "maxmemory-policy", "noeviction");
      await expect.poll(() => matching("Redis maxmemory-policy is noeviction").length).toBe(2);
    } finally {
      watch.stop();
    }
  });

  it("says once that CONFIG is refused (as managed Redis does), and takes the policy from INFO memory", async () => {
    await r.client.config("SET", "maxmemory-policy", "volatile-lru");
    // An ACL user without CONFIG: the server answers NOPERM, as managed Redis does with a renamed or denied CONFIG.
    await r.client.call("ACL", "SETUSER", "app", "on", ">app-secret", "~*", "&*", "+@all", "-config");
    const limited = new Redis({ port: r.server.port, host: "127.0.0.1", username: "app", password: "app-secret" });
    try {
      await expect(limited.config("GET", "maxmemory-policy")).rejects.toThrow(/NOPERM/);
      const { log, matching } = captureLog();
      const metrics = new Metrics();
      const watch = new EvictionPolicyWatch(new RedisMemoryPolicy(limited), metrics, log, { intervalMs: 60_000 });
      for (let i = 0; i < 3; i++) await watch.check();
      const refused = matching("Redis refused CONFIG GET maxmemory-policy");
      expect(refused).toHaveLength(1);
      expect(String(refused[0]!.reply)).toMatch(/NOPERM/);
      expect(await gauge(metrics.redisMaxmemoryPolicy)).toEqual([
        { labels: { node: `127.0.0.1:${r.server.port}`, policy: "volatile-lru" }, value: 1 },
      ]);
    } finally {
      limited.disconnect();
    }
  });

  it("drops the gauges while Redis does not answer, and never throws", async () => {
    const { log, matching } = captureLog();
    const metrics = new Metrics();
    const watch = new EvictionPolicyWatch(new RedisMemoryPolicy(r.client, 300), metrics, log, { intervalMs: 60_000 });
    expect(await watch.check()).toHaveLength(1);
    expect(await gauge(metrics.redisUsedMemoryBytes)).toHaveLength(1);
    r.server.pause();
    try {
      expect(await watch.check()).toBeUndefined();
      expect(await gauge(metrics.redisUsedMemoryBytes)).toEqual([]);
      expect(await gauge(metrics.redisMaxmemoryPolicy)).toEqual([]);
      expect(matching("could not read Redis maxmemory-policy")).toHaveLength(1);
    } finally {
      r.server.resume();
    }
    expect(await watch.check()).toHaveLength(1);
  });
});

describe("a full Redis under noeviction", () => {
  let redis: PrivateRedis;
  let client: Redis;
  let svc: TestService;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    client = new Redis(redis.url);
    svc = await startTestService({ label: "eviction_oom", redisUrl: redis.url, env: { WARMUP_LIMIT: "0" } });
  });
  afterAll(async () => {
    await svc?.close();
    client?.disconnect();
    await redis?.stop();
  });

  it("fails every fill with OOM, and reads are answered from PostgreSQL, not errors; writes still land", async () => {
    const cachedUser = randomUserId();
    await svc.grpc.unary("updateProfile", { userId: cachedUser, profile: { firstName: "cached" } }, token);
    await svc.grpc.unary("getProfile", { userId: cachedUser }, token);
    await expect.poll(async () => (await client.get(svc.keys.profile(cachedUser)))?.startsWith("{")).toBe(true);
    const others = Array.from({ length: 20 }, () => randomUserId());
    for (const [i, id] of others.entries()) {
      await svc.grpc.unary("updateProfile", { userId: id, profile: { firstName: `u${i}` } }, token);
    }

    // A megabyte of other data, then a maxmemory below what Redis holds: full, and it stays full
    // (right at the limit, used_memory moves with client buffers and Redis refuses only now and then).
    let junk = 0;
    const batch = client.pipeline();
    for (; junk < 256; junk++) batch.set(`junk:${junk}`, "x".repeat(4096));
    await batch.exec();
    await client.config("SET", "maxmemory-policy", "noeviction");
    await client.config("SET", "maxmemory", String((await usedMemory(client)) - 256 * 1024));
    await expect(client.set("probe", "x")).rejects.toThrow(/OOM command not allowed/);
    // Even a hit is refused on the single-key path: SET … NX GET is a write command, refused at OOM before it runs.
    await expect(client.call("SET", svc.keys.profile(cachedUser), "~lease:x", "NX", "GET")).rejects.toThrow(/OOM/);
    expect(await client.get(svc.keys.profile(cachedUser))).toMatch(/^\{/);

    const checked = await svc.app.eviction!.check();
    expect(checked?.[0]).toMatchObject({ policy: "noeviction" });
    expect(checked![0]!.usedBytes).toBeGreaterThanOrEqual(checked![0]!.maxBytes);
    expect(await gauge(svc.app.metrics.redisMaxmemoryPolicy)).toEqual([
      { labels: { node: `127.0.0.1:${redis.port}`, policy: "noeviction" }, value: 1 },
    ]);

    const count = async (name: "dbLoads" | "redisFallbacks" | "cacheHits") =>
      (await svc.app.metrics[name].get()).values.reduce((sum, v) => sum + v.value, 0);
    const before = {
      dbLoads: await count("dbLoads"),
      fallbacks: await count("redisFallbacks"),
      hits: await count("cacheHits"),
    };
    let reads = 0;
    let errors = 0;
    const read = async (call: () => Promise<unknown>) => {
      reads++;
      try {
        await call();
      } catch {
        errors++;
      }
    };
    for (const [i, id] of others.entries()) {
      await read(async () => {
        const res = await svc.grpc.unary("getProfile", { userId: id }, token);
        expect(res.profile?.firstName).toBe(`u${i}`);
      });
    }
    await read(async () => {
      const res = await svc.grpc.unary("getProfile", { userId: cachedUser, includePreferences: true }, token);
      expect(res.profile?.firstName).toBe("cached");
    });
    await read(async () => {
      const res = await svc.grpc.unary("batchGetProfiles", { userIds: [cachedUser, ...others] }, token);
      expect(res.profiles).toHaveLength(others.length + 1);
    });
    // DEL is allowed at OOM, so a write still invalidates, and its reader sees it.
    await svc.grpc.unary("updateProfile", { userId: cachedUser, profile: { firstName: "written at OOM" } }, token);
    await read(async () => {
      const res = await svc.grpc.unary("getProfile", { userId: cachedUser }, token);
      expect(res.profile?.firstName).toBe("written at OOM");
    });
    const stillCached = (await client.mget(others.map((id) => svc.keys.profile(id)))).filter((v) => v !== null);
    const figures = {
      junkKeys: junk,
      reads,
      errors,
      dbLoads: (await count("dbLoads")) - before.dbLoads,
      redisFallbacks: (await count("redisFallbacks")) - before.fallbacks,
      cacheHits: (await count("cacheHits")) - before.hits,
      fillsLanded: stillCached.length,
      invalidationFailures: (await svc.app.metrics.invalidationFailures.get()).values[0]?.value ?? 0,
    };
    console.log(`Full Redis under noeviction: ${JSON.stringify(figures)}`);
    expect(errors).toBe(0);
    expect(figures.redisFallbacks).toBeGreaterThan(0);
    expect(figures.dbLoads).toBeGreaterThanOrEqual(others.length);
    expect(stillCached).toEqual([]);
    expect(figures.invalidationFailures).toBe(0);
    expect((await settledCheck(svc.app.consistency, [cachedUser, ...others], "full Redis", 0)).inconsistencies).toEqual(
      [],
    );
  });
});

/**
 * A fill that takes a vanished lease for its own: it lands when the key holds
 * its lease, or nothing at all. That is what an evicted lease would allow if
 * the fill script checked "not someone else's" instead of "still mine".
 */
const FILL_IF_ABSENT_OR_LEASED = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1`;

function fillIfAbsentOrLeased(inner: CacheStore, redis: Redis): CacheStore {
  return Object.assign(Object.create(inner) as CacheStore, {
    async fillLeased(entries: readonly LeasedFill[]) {
      const landed: boolean[] = [];
      for (const e of entries) {
        landed.push((await redis.eval(FILL_IF_ABSENT_OR_LEASED, 1, e.key, e.lease, e.value, e.ttlSeconds)) === 1);
      }
      return landed;
    },
  });
}

describe("an evicted lease under allkeys-lru pressure", () => {
  const r = withPrivateRedis();

  /**
   * A reader leases the key and reads PostgreSQL; memory pressure evicts its
   * lease; a write commits (its DEL finds nothing to delete); then the reader
   * tries to fill what it read before the write.
   */
  async function evictedLeaseRace(target: TestService, db: HeldDatabase, kind: "update" | "create") {
    const id = randomUserId();
    if (kind === "update") {
      await target.grpc.unary("updateProfile", { userId: id, profile: { firstName: "old" } }, token);
    }
    const key = target.keys.profile(id);
    // The reader holds its SELECT's result: it has read PostgreSQL and not yet filled.
    let reached!: () => void;
    let release!: () => void;
    const atBarrier = new Promise<void>((r) => (reached = r));
    db.hold = { userId: id, reached, release: new Promise<void>((r) => (release = r)) };
    const slowRead = target.grpc.unary("getProfile", { userId: id }, token).then(
      (r) => r.profile?.firstName,
      () => "NOT_FOUND",
    );
    await atBarrier;
    db.hold = undefined;
    expect(await r.client.get(key)).toMatch(/^~lease:/);

    // Older than anything written from now on, so LRU picks it early; then fill memory.
    await sleep(1100);
    const evictedBefore = await stat(r.client, "evicted_keys");
    await r.client.config("SET", "maxmemory-policy", "allkeys-lru");
    await r.client.config("SET", "maxmemory", String((await usedMemory(r.client)) + 512 * 1024));
    let junk = 0;
    while ((await r.client.object("IDLETIME", key)) !== null && junk < 200_000) {
      const batch = r.client.pipeline();
      for (let i = 0; i < 200; i++) batch.set(`junk:${junk++}`, "x".repeat(1024));
      await batch.exec();
    }
    expect(await r.client.exists(key)).toBe(0);
    const evicted = (await stat(r.client, "evicted_keys")) - evictedBefore;

    await target.grpc.unary("updateProfile", { userId: id, profile: { firstName: "new" } }, token);
    const rejectedBefore = await rejected(target);
    release();
    const slowAnswer = await slowRead;
    // The fill has run once it was rejected or its value (or marker) is there.
    await expect
      .poll(async () => (await rejected(target)) > rejectedBefore || (await r.client.exists(key)) === 1)
      .toBe(true);
    const cachedAfterFill = await r.client.get(key);
    // No more pressure: what readers get now is what the fill left.
    await r.client.config("SET", "maxmemory", "0");
    const after = await target.grpc.unary("getProfile", { userId: id }, token).then(
      (r) => r.profile?.firstName,
      () => "NOT_FOUND",
    );
    const fillRejected = (await rejected(target)) > rejectedBefore;
    return { id, slowAnswer, junk, evicted, cachedAfterFill, after, fillRejected };
  }

  const rejected = async (target: TestService) =>
    (await target.app.metrics.cacheFillsRejected.get()).values.reduce((sum, v) => sum + v.value, 0);

  afterEach(async () => {
    await r.client.config("SET", "maxmemory", "0");
    await r.client.flushdb();
  });

  for (const kind of ["update", "create"] as const) {
    const what = kind === "update" ? "an update" : "a create after a miss";
    it(`never lets the fill land after a write (${what})`, async () => {
      let db!: HeldDatabase;
      const svc = await startTestService({
        label: `evicted_lease_${kind}`,
        redisUrl: r.server.url,
        decorateStores: (stores) => ({ ...stores, db: (db = new HeldDatabase(stores.db)) }),
        // Only eviction, not expiry, may take the lease away in this test.
        env: { WARMUP_LIMIT: "0", CACHE_LEASE_TTL_MS: "60000" },
      });
      try {
        const race = await evictedLeaseRace(svc, db, kind);
        console.log(`Evicted lease (${kind}): ${JSON.stringify(race)}`);
        expect(race.slowAnswer).toBe(kind === "update" ? "old" : "NOT_FOUND"); // it overlapped the write: fair
        expect(race.fillRejected).toBe(true);
        expect(race.cachedAfterFill).toBeNull();
        expect(race.after).toBe("new");
        const check = await settledCheck(svc.app.consistency, [race.id], `evicted lease, ${kind}`);
        expect(check.inconsistencies).toEqual([]);
      } finally {
        await svc.close();
      }
    }, 60_000);

    it(`lets the stale fill land when a vanished lease counts as still ours, so the test above can fail (${what})`, async () => {
      let db!: HeldDatabase;
      const naiveClient = new Redis(r.server.url);
      const svc = await startTestService({
        label: `evicted_lease_naive_${kind}`,
        redisUrl: r.server.url,
        env: { WARMUP_LIMIT: "0", CACHE_LEASE_TTL_MS: "60000" },
        decorateStores: (stores) => ({
          ...stores,
          db: (db = new HeldDatabase(stores.db)),
          cache: fillIfAbsentOrLeased(stores.cache, naiveClient),
        }),
      });
      try {
        const race = await evictedLeaseRace(svc, db, kind);
        console.log(`Evicted lease, naive fill (${kind}): ${JSON.stringify(race)}`);
        expect(race.fillRejected).toBe(false);
        expect(race.after).toBe(kind === "update" ? "old" : "NOT_FOUND"); // stale until the TTL
        // The checker sees it too.
        const check = await settledCheck(svc.app.consistency, [race.id], `evicted lease, naive fill, ${kind}`);
        expect(check.inconsistencies).toEqual([
          expect.objectContaining({
            userId: race.id,
            cacheType: "profile",
            cachedVersion: kind === "update" ? expect.any(Number) : null,
          }),
        ]);
      } finally {
        naiveClient.disconnect();
        await svc.close();
      }
    }, 60_000);
  }
});
