// Redis is a cache: when it is down or frozen, reads are answered by
// PostgreSQL and writes still succeed.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FailurePolicy, GuardedCacheStore } from "../src/store/failure-policy.js";
import { RedisCacheStore } from "../src/store/redis-cache-store.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { RedisEventBus } from "../src/store/redis-event-bus.js";
import { CountingDatabase } from "./support/counting-database.js";
import { PrivateRedis } from "./support/private-redis.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let redis: PrivateRedis;
let svc: TestService;
let db: CountingDatabase;
let token: string;

beforeAll(async () => {
  redis = await PrivateRedis.start();
  svc = await startTestService({
    label: "redis_failure",
    redisUrl: redis.url,
    env: { REDIS_TIMEOUT_MS: "100" },
    decorateStores: (stores) => {
      db = new CountingDatabase(stores.db);
      return { ...stores, db };
    },
  });
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  await svc?.close();
  await redis?.stop();
});

async function metric(name: "redisFallbacks" | "invalidationFailures" | "eventPublishFailures"): Promise<number> {
  const m = await svc.app.metrics[name].get();
  return m.values.reduce((sum, v) => sum + v.value, 0);
}

/** An UpdateProfile of the first name alone, as a client that edits one field sends it. */
function setFirstName(userId: string, firstName: string) {
  return svc.grpc.unary(
    "updateProfile",
    { userId, profile: { firstName }, updateMask: { paths: ["first_name"] } },
    token,
  );
}

// One outage, in order: each test below is a step of it, and relies on the ones before.
describe("with Redis stopped", () => {
  const id = randomUserId();

  beforeAll(async () => {
    await svc.grpc.unary("updateProfile", { userId: id, profile: { firstName: "cached" } }, token);
    await svc.grpc.unary("getProfile", { userId: id }, token);
    expect(await svc.redis.exists(svc.keys.profile(id))).toBe(1);
    await redis.stop();
  });

  it("serves reads from PostgreSQL, counting the fallback", async () => {
    const fallbacks = await metric("redisFallbacks");
    const read = await svc.grpc.unary("getProfile", { userId: id, includePreferences: true }, token);
    expect(read.profile?.firstName).toBe("cached");
    expect(await metric("redisFallbacks")).toBeGreaterThan(fallbacks);
  });

  it("accepts writes, counting the failed invalidation and the failed publish", async () => {
    const failedInvalidations = await metric("invalidationFailures");
    const failedPublishes = await metric("eventPublishFailures");
    const written = await setFirstName(id, "written while down");
    expect(written.profile?.firstName).toBe("written while down");
    expect(await metric("invalidationFailures")).toBe(failedInvalidations + 1);
    expect(await metric("eventPublishFailures")).toBe(failedPublishes + 1);
  });

  it("serves batches from PostgreSQL", async () => {
    const batch = await svc.grpc.unary("batchGetProfiles", { userIds: [id, randomUserId()] }, token);
    expect(batch.profiles.map((p) => p.firstName)).toEqual(["written while down"]);
    expect(batch.missingUserIds).toHaveLength(1);
  });

  it("keeps preferences readable after a write", async () => {
    const prefs = await svc.grpc.unary(
      "updatePreferences",
      { userId: id, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
      token,
    );
    expect(prefs.preferences?.theme).toBe("dark");
    expect((await svc.grpc.unary("getPreferences", { userId: id }, token)).preferences?.theme).toBe("dark");
  });

  it("still lets concurrent reads share one query", async () => {
    db.reset();
    await Promise.all(Array.from({ length: 30 }, () => svc.grpc.unary("getProfile", { userId: id }, token)));
    expect(db.count(/FROM profiles WHERE/)).toBe(1);
  });

  it("reads from the cache again once Redis returns", async () => {
    await redis.start();
    await svc.redis.ping();
    // Reads go back to the cache once the client has reconnected and the breaker has closed.
    await expect
      .poll(
        async () => {
          await svc.grpc.unary("getProfile", { userId: id }, token);
          return svc.redis.exists(svc.keys.profile(id));
        },
        { timeout: 10_000, interval: 200 },
      )
      .toBe(1);
    db.reset();
    expect((await svc.grpc.unary("getProfile", { userId: id }, token)).profile?.firstName).toBe("written while down");
    expect(db.count(/FROM profiles WHERE/)).toBe(0);
  });
});

describe("a busy event loop", () => {
  it("is not mistaken for a slow Redis: a reply that waited on our own loop still counts", async () => {
    const client = createRedisClient({ url: redis.url, cluster: false });
    expect(await waitUntilReady(client, 5000)).toBe(true);
    const store = new GuardedCacheStore(new RedisCacheStore(client), new FailurePolicy({ timeoutMs: 100 }));
    try {
      await client.set("busy-loop-key", "v");
      const read = store.getMany(["busy-loop-key"]);
      // Block this process for three times the Redis timeout while the reply arrives.
      const until = performance.now() + 300;
      while (performance.now() < until) {
        // busy
      }
      expect(await read).toEqual(["v"]);
    } finally {
      client.disconnect();
    }
  });

  it("is not mistaken for a slow Redis by the bus either: a publish whose reply waited on our loop succeeds", async () => {
    const client = createRedisClient({ url: redis.url, cluster: false });
    expect(await waitUntilReady(client, 5000)).toBe(true);
    const bus = new RedisEventBus(client, new FailurePolicy({ timeoutMs: 100 }));
    try {
      const published = bus.publish("busy-loop-channel", "m");
      const until = performance.now() + 300;
      while (performance.now() < until) {
        // busy
      }
      await expect(published).resolves.toBeUndefined();
    } finally {
      await bus.close();
      client.disconnect();
    }
  });
});

describe("with Redis frozen", () => {
  const id = randomUserId();

  beforeAll(async () => {
    await svc.grpc.unary("updateProfile", { userId: id, profile: { firstName: "frozen" } }, token);
    redis.pause();
  });
  afterAll(() => redis.resume());

  it("answers reads from PostgreSQL after the bounded timeout instead of hanging", async () => {
    const started = Date.now();
    const read = await svc.grpc.unary("getProfile", { userId: id }, token);
    expect(read.profile?.firstName).toBe("frozen");
    // Without the bound the call would wait for its 20 s deadline; allow generous slack for a busy machine.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("accepts writes", async () => {
    expect((await setFirstName(id, "still writable")).profile?.firstName).toBe("still writable");
  });
});
