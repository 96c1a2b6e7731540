// Cache-aside behaviour observed in a real Redis: hits, misses, TTLs,
// invalidation, the stale-fill race, single flight and the size limit.

import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../src/metrics/metrics.js";
import { CacheAside, type CacheAsideOptions, type Entity } from "../src/cache/cache-aside.js";
import { isLease, type CacheStore, type LeasedFill } from "../src/store/cache-store.js";
import { FailurePolicy, GuardedCacheStore } from "../src/store/failure-policy.js";
import { RedisCacheStore } from "../src/store/redis-cache-store.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { CountingCacheStore } from "./support/counting-cache-store.js";
import { CountingDatabase } from "./support/counting-database.js";
import { HeldDatabase } from "./support/held-database.js";
import { settledCheck } from "./support/consistency.js";
import { grpc } from "./support/grpc-client.js";
import { uniqueKeyPrefix, testRedisUrl } from "./support/servers.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let svc: TestService;
let db: CountingDatabase;
let cache: CountingCacheStore;
const admin = { token: "" };

beforeAll(async () => {
  svc = await startTestService({
    label: "cache_aside",
    decorateStores: (stores) => {
      db = new CountingDatabase(stores.db);
      cache = new CountingCacheStore(stores.cache);
      return { ...stores, db, cache };
    },
  });
  admin.token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  await svc?.close();
});

const PROFILE_SELECT = /FROM profiles WHERE/;
/** Reads of the two tables (the watch hub's outbox reads run in the background and are not ours). */
const tableReads = () => db.queries.filter((q) => /FROM (profiles|preferences) WHERE/.test(q));
const PREFERENCES_SELECT = /FROM preferences WHERE/;

async function createProfile(userId: string, firstName = "John"): Promise<string> {
  const res = await svc.grpc.unary("updateProfile", { userId, profile: { firstName, lastName: "Doe" } }, admin.token);
  return res.profile!.etag;
}

/** Fills land just after the answer: wait until the key holds a value (or a "no such row" marker). */
async function filled(svc: TestService, key: string): Promise<string> {
  let raw: string | null = null;
  await expect.poll(async () => (raw = await svc.redis.get(key)) !== null && !isLease(raw)).toBe(true);
  return raw!;
}

function counter(name: "cacheHits" | "cacheMisses", cacheType: string): Promise<number> {
  return svc.app.metrics[name].get().then((m) => m.values.find((v) => v.labels.cache_type === cacheType)?.value ?? 0);
}

describe("reads", () => {
  it("misses, fills with the seed's JSON shape and TTL, then hits", async () => {
    const id = randomUserId();
    await createProfile(id);
    const key = svc.keys.profile(id);
    expect(await svc.redis.exists(key)).toBe(0);

    const misses = await counter("cacheMisses", "profile");
    const hits = await counter("cacheHits", "profile");
    db.reset();
    const first = await svc.grpc.unary("getProfile", { userId: id }, admin.token);
    expect(db.count(PROFILE_SELECT)).toBe(1);
    expect(await counter("cacheMisses", "profile")).toBe(misses + 1);

    const cached = JSON.parse(await filled(svc, key));
    expect(Object.keys(cached).sort()).toEqual(
      [
        "user_id",
        "first_name",
        "last_name",
        "bio",
        "avatar_url",
        "phone",
        "created_at",
        "updated_at",
        "version",
      ].sort(),
    );
    expect(cached).toMatchObject({
      user_id: id,
      first_name: "John",
      last_name: "Doe",
      version: Number(first.profile!.etag),
    });
    expect(cached.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const ttl = await svc.redis.ttl(key);
    expect(ttl).toBeGreaterThan(290);
    expect(ttl).toBeLessThanOrEqual(300);

    db.reset();
    const second = await svc.grpc.unary("getProfile", { userId: id }, admin.token);
    expect(db.count(PROFILE_SELECT)).toBe(0);
    expect(await counter("cacheHits", "profile")).toBe(hits + 1);
    expect(second.profile).toEqual(first.profile);
  });

  it("caches preferences for 600 s", async () => {
    const id = randomUserId();
    await svc.grpc.unary(
      "updatePreferences",
      { userId: id, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
      admin.token,
    );
    await svc.grpc.unary("getPreferences", { userId: id }, admin.token);
    await filled(svc, svc.keys.preferences(id));
    const ttl = await svc.redis.ttl(svc.keys.preferences(id));
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
    const cached = JSON.parse((await svc.redis.get(svc.keys.preferences(id)))!);
    expect(cached).toMatchObject({
      user_id: id,
      theme: "dark",
      language: "en",
      email_notifications: true,
      push_notifications: false,
      settings: {},
    });
  });

  it("takes both TTLs from configuration", async () => {
    const custom = await startTestService({
      label: "cache_ttl",
      env: { PROFILE_CACHE_TTL_SECONDS: "42", PREFERENCES_CACHE_TTL_SECONDS: "77" },
    });
    try {
      const id = randomUserId();
      await custom.grpc.unary("updateProfile", { userId: id, profile: { firstName: "t" } }, admin.token);
      await custom.grpc.unary(
        "updatePreferences",
        { userId: id, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
        admin.token,
      );
      await custom.grpc.unary("getProfile", { userId: id, includePreferences: true }, admin.token);
      await filled(custom, custom.keys.profile(id));
      await filled(custom, custom.keys.preferences(id));
      const profileTtl = await custom.redis.ttl(custom.keys.profile(id));
      const preferencesTtl = await custom.redis.ttl(custom.keys.preferences(id));
      expect(profileTtl).toBeGreaterThan(32);
      expect(profileTtl).toBeLessThanOrEqual(42);
      expect(preferencesTtl).toBeGreaterThan(67);
      expect(preferencesTtl).toBeLessThanOrEqual(77);
    } finally {
      await custom.close();
    }
  });

  it("reads profile and preferences with one cache round trip and one query per table", async () => {
    const id = randomUserId();
    await createProfile(id);
    await svc.grpc.unary(
      "updatePreferences",
      { userId: id, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
      admin.token,
    );
    db.reset();
    cache.reset();
    const res = await svc.grpc.unary("getProfile", { userId: id, includePreferences: true }, admin.token);
    expect(res.preferences?.theme).toBe("dark");
    expect(cache.count("acquireLeases")).toBe(1);
    expect(cache.calls[0]!.keys).toEqual([svc.keys.profile(id), svc.keys.preferences(id)]);
    expect(db.count(PROFILE_SELECT)).toBe(1);
    expect(db.count(PREFERENCES_SELECT)).toBe(1);

    db.reset();
    cache.reset();
    await svc.grpc.unary("getProfile", { userId: id, includePreferences: true }, admin.token);
    expect(cache.calls.map((c) => c.method)).toEqual(["acquireLeases"]);
    expect(tableReads()).toEqual([]);
  });

  it("serves a batch with one read-or-lease call (one MGET, then leases for the misses) and one ANY($1) query, then fills them", async () => {
    const ids = Array.from({ length: 5 }, randomUserId);
    for (const id of ids) await createProfile(id);
    await svc.grpc.unary("getProfile", { userId: ids[0] }, admin.token);
    db.reset();
    cache.reset();
    const res = await svc.grpc.unary("batchGetProfiles", { userIds: [...ids, randomUserId()] }, admin.token);
    expect(res.profiles).toHaveLength(5);
    expect(cache.calls.filter((c) => c.method !== "fillLeased").map((c) => c.method)).toEqual(["acquireLeases"]);
    expect(db.queries.filter((q) => PROFILE_SELECT.test(q))).toEqual([expect.stringContaining("= ANY($1")]);
    for (const id of ids) await filled(svc, svc.keys.profile(id));

    db.reset();
    await svc.grpc.unary("batchGetProfiles", { userIds: ids }, admin.token);
    expect(tableReads()).toEqual([]);
  });

  it("remembers a missing profile briefly, and a create makes it visible at once", async () => {
    const id = randomUserId();
    db.reset();
    for (let i = 0; i < 3; i++) {
      await expect(svc.grpc.unary("getProfile", { userId: id }, admin.token)).rejects.toMatchObject({
        code: grpc.status.NOT_FOUND,
      });
    }
    expect(db.count(PROFILE_SELECT)).toBe(1);
    await createProfile(id, "Created");
    const res = await svc.grpc.unary("getProfile", { userId: id }, admin.token);
    expect(res.profile?.firstName).toBe("Created");
  });
});

describe("invalidation", () => {
  it("an update deletes the cached profile, and the next read sees the new version", async () => {
    const id = randomUserId();
    await createProfile(id, "Before");
    await svc.grpc.unary("getProfile", { userId: id }, admin.token);
    await filled(svc, svc.keys.profile(id));

    await svc.grpc.unary(
      "updateProfile",
      { userId: id, profile: { firstName: "After" }, updateMask: { paths: ["first_name"] } },
      admin.token,
    );
    expect(await svc.redis.exists(svc.keys.profile(id))).toBe(0);
    const res = await svc.grpc.unary("getProfile", { userId: id }, admin.token);
    expect(res.profile?.firstName).toBe("After");
  });

  it("a preferences update deletes the cached preferences only", async () => {
    const id = randomUserId();
    await createProfile(id);
    await svc.grpc.unary(
      "updatePreferences",
      { userId: id, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
      admin.token,
    );
    await svc.grpc.unary("getProfile", { userId: id, includePreferences: true }, admin.token);
    await filled(svc, svc.keys.profile(id));
    await filled(svc, svc.keys.preferences(id));
    await svc.grpc.unary(
      "updatePreferences",
      { userId: id, preferences: { theme: "light" }, updateMask: { paths: ["theme"] } },
      admin.token,
    );
    expect(await svc.redis.exists(svc.keys.preferences(id))).toBe(0);
    expect(await svc.redis.exists(svc.keys.profile(id))).toBe(1);
    expect((await svc.grpc.unary("getPreferences", { userId: id }, admin.token)).preferences?.theme).toBe("light");
  });

  it("a delete removes both keys", async () => {
    const id = randomUserId();
    await createProfile(id);
    await svc.grpc.unary(
      "updatePreferences",
      { userId: id, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
      admin.token,
    );
    await svc.grpc.unary("getProfile", { userId: id, includePreferences: true }, admin.token);
    await filled(svc, svc.keys.profile(id));
    await filled(svc, svc.keys.preferences(id));

    await svc.grpc.unary("deleteProfile", { userId: id }, admin.token);
    expect(await svc.redis.exists(svc.keys.profile(id), svc.keys.preferences(id))).toBe(0);
    await expect(svc.grpc.unary("getProfile", { userId: id }, admin.token)).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });
});

describe("single flight", () => {
  it("N concurrent misses for one key make exactly one database query", async () => {
    const id = randomUserId();
    await createProfile(id);
    db.reset();
    const results = await Promise.all(
      Array.from({ length: 50 }, () => svc.grpc.unary("getProfile", { userId: id }, admin.token)),
    );
    expect(new Set(results.map((r) => r.profile!.etag)).size).toBe(1);
    expect(db.count(PROFILE_SELECT)).toBe(1);
  });

  it("holds over both protocols and a batch at once", async () => {
    const id = randomUserId();
    await createProfile(id);
    db.reset();
    const headers = { authorization: `Bearer ${admin.token}` };
    await Promise.all([
      ...Array.from({ length: 20 }, () => svc.grpc.unary("getProfile", { userId: id }, admin.token)),
      ...Array.from({ length: 20 }, () => svc.connect.getProfile({ userId: id }, { headers })),
      svc.grpc.unary("batchGetProfiles", { userIds: [id, id] }, admin.token),
    ]);
    expect(db.count(PROFILE_SELECT)).toBe(1);
  });
});

describe("the stale-fill race", () => {
  // reader misses and reads version N → writer commits N+1 and invalidates → reader fills.
  async function raceOnce(target: TestService, db: HeldDatabase, fillSettled: (key: string) => Promise<void>) {
    const id = randomUserId();
    await target.grpc.unary("updateProfile", { userId: id, profile: { firstName: "old" } }, admin.token);
    const key = target.keys.profile(id);

    let reached!: () => void;
    let release!: () => void;
    const atBarrier = new Promise<void>((r) => (reached = r));
    db.hold = { userId: id, reached, release: new Promise<void>((r) => (release = r)) };

    const slowRead = target.grpc.unary("getProfile", { userId: id }, admin.token);
    await atBarrier; // the reader has read "old" from PostgreSQL and not yet filled
    db.hold = undefined;
    const write = await target.grpc.unary(
      "updateProfile",
      { userId: id, profile: { firstName: "new" }, updateMask: { paths: ["first_name"] } },
      admin.token,
    );
    release();
    expect((await slowRead).profile?.firstName).toBe("old"); // it overlapped the write, so old is a fair answer

    await fillSettled(key);
    const cached = await target.redis.get(key);
    const after = await target.grpc.unary("getProfile", { userId: id }, admin.token);
    return { cached, after: after.profile!, write: write.profile! };
  }

  it("never lets the slow reader put back the old version", async () => {
    let db!: HeldDatabase;
    const raced = await startTestService({
      label: "stale_fill",
      decorateStores: (stores) => ({ ...stores, db: (db = new HeldDatabase(stores.db)) }),
    });
    try {
      const rejectedFills = async () =>
        (await raced.app.metrics.cacheFillsRejected.get()).values.find((v) => v.labels.cache_type === "profile")
          ?.value ?? 0;
      const { cached, after, write } = await raceOnce(raced, db, () => expect.poll(rejectedFills).toBe(1));
      if (cached !== null) expect(JSON.parse(cached).first_name).toBe("new");
      expect(after.firstName).toBe("new");
      expect(after.etag).toBe(write.etag);
      const rejected = await raced.app.metrics.cacheFillsRejected.get();
      expect(rejected.values.find((v) => v.labels.cache_type === "profile")?.value).toBe(1);
      expect((await settledCheck(raced.app.consistency, [after.userId], "stale-fill race")).inconsistencies).toEqual(
        [],
      );
    } finally {
      await raced.close();
    }
  });

  it("fails (serves the old version) when the fill is a plain SET, so the test above can fail", async () => {
    const plainSet = (inner: CacheStore, redis: Redis) =>
      Object.assign(Object.create(inner) as CacheStore, {
        async fillLeased(entries: readonly LeasedFill[]) {
          for (const e of entries) if (e.ttlSeconds > 0) await redis.set(e.key, e.value, "EX", e.ttlSeconds);
          return entries.map(() => true);
        },
      });
    const naiveRedis = new Redis(testRedisUrl);
    let db!: HeldDatabase;
    const naive = await startTestService({
      label: "stale_fill_naive",
      decorateStores: (stores) => ({
        ...stores,
        db: (db = new HeldDatabase(stores.db)),
        cache: plainSet(stores.cache, naiveRedis),
      }),
    });
    try {
      const { cached, after } = await raceOnce(naive, db, async (key) => void (await filled(naive, key)));
      expect(JSON.parse(cached!).first_name).toBe("old");
      expect(after.firstName).toBe("old");
    } finally {
      naiveRedis.disconnect();
      await naive.close();
    }
  });
});

/** A CacheAside straight on a Redis client of its own, for tests below the RPC layer. */
async function redisCacheAside(options: Partial<CacheAsideOptions> = {}) {
  const client = createRedisClient({ url: testRedisUrl, cluster: false });
  expect(await waitUntilReady(client, 5000)).toBe(true);
  const metrics = new Metrics();
  const store = new GuardedCacheStore(new RedisCacheStore(client), new FailurePolicy({ timeoutMs: 1000 }));
  const aside = new CacheAside({ store, metrics }, { leaseWaitMs: 2000, ...options });
  return { client, metrics, aside };
}

describe("the 1 MiB limit", () => {
  it("never caches a value over 1 MiB, and still answers", async () => {
    const prefix = uniqueKeyPrefix("big_values");
    const { client, metrics, aside } = await redisCacheAside({ maxValueBytes: 1024 * 1024 });
    const entity = (size: number): Entity<string> => ({
      type: "profile",
      ttlSeconds: 60,
      key: (id) => `${prefix}${size}:${id}`,
      encode: (v) => JSON.stringify({ v }),
      decode: (raw) => (JSON.parse(raw) as { v: string }).v,
      load: async (ids) => new Map(ids.map((id) => [id, "x".repeat(size)])),
    });
    try {
      const big = entity(1024 * 1024);
      const small = entity(1000);
      expect((await aside.get(big, "a")).value).toHaveLength(1024 * 1024);
      expect((await aside.get(small, "a")).value).toHaveLength(1000);
      expect(await client.exists(big.key("a"))).toBe(0);
      expect(await client.exists(small.key("a"))).toBe(1);
      expect((await metrics.cacheValuesTooLarge.get()).values[0]?.value).toBe(1);
    } finally {
      client.disconnect();
    }
  });
});
