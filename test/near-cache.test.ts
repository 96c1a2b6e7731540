// The optional near cache: in-process hits, dropped by the change feed when
// any replica writes, flushed when the feed is lost, and never older than its max age.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CountingCacheStore } from "./support/counting-cache-store.js";
import { PrivateRedis } from "./support/private-redis.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let redis: PrivateRedis;
let a: TestService;
let b: TestService;
let bCache: CountingCacheStore;
let token: string;

const env = { NEAR_CACHE_MAX_ENTRIES: "1000", NEAR_CACHE_MAX_AGE_MS: "60000" };

beforeAll(async () => {
  redis = await PrivateRedis.start();
  a = await startTestService({ label: "near", env, redisUrl: redis.url });
  b = await startTestService({
    label: "near_b",
    env,
    redisUrl: redis.url,
    database: a.database,
    keyPrefix: a.keyPrefix,
    decorateStores: (stores) => ({ ...stores, cache: (bCache = new CountingCacheStore(stores.cache)) }),
  });
  token = await mintToken("tester", { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  await b?.close();
  await a?.close();
  await redis?.stop();
});

const nameOn = async (svc: TestService, id: string) => (await svc.grpc.unary("getProfile", { userId: id }, token)).profile?.firstName;
const setName = (svc: TestService, id: string, firstName: string) =>
  svc.grpc.unary("updateProfile", { userId: id, profile: { firstName }, updateMask: { paths: ["first_name"] } }, token);

describe("the near cache", () => {
  it("answers repeated reads in process, without a Redis round trip", async () => {
    const id = randomUserId();
    await setName(a, id, "one");
    await expect.poll(() => nameOn(b, id)).toBe("one");
    bCache.reset();
    expect(await nameOn(b, id)).toBe("one");
    expect(await nameOn(b, id)).toBe("one");
    expect(bCache.count("getMany")).toBe(0);
  });

  it("drops an entry when another replica writes it", async () => {
    const id = randomUserId();
    await setName(a, id, "before");
    await expect.poll(() => nameOn(b, id)).toBe("before");
    await setName(a, id, "after");
    // The change event reaches B within milliseconds; its max age here is a minute.
    await expect.poll(() => nameOn(b, id), { timeout: 2000, interval: 20 }).toBe("after");
  });

  it("reads its own writes at once", async () => {
    const id = randomUserId();
    await setName(b, id, "v1");
    expect(await nameOn(b, id)).toBe("v1");
    await setName(b, id, "v2");
    expect(await nameOn(b, id)).toBe("v2");
  });

  it("flushes and stays off while the change feed is down", async () => {
    const id = randomUserId();
    await setName(a, id, "cached");
    expect(await nameOn(b, id)).toBe("cached");
    await redis.stop();
    try {
      // Nothing can tell B about writes now, so it must not answer from memory.
      await a.app.stores.db.query("UPDATE profiles SET first_name = 'changed behind its back' WHERE user_id = $1", [id]);
      await expect.poll(() => nameOn(b, id), { timeout: 5000 }).toBe("changed behind its back");
    } finally {
      await redis.start();
    }
  });
});

describe("its staleness bound", () => {
  it("is the max age when an event never arrives", async () => {
    const short = await startTestService({
      label: "near_age",
      env: { NEAR_CACHE_MAX_ENTRIES: "1000", NEAR_CACHE_MAX_AGE_MS: "300" },
      redisUrl: redis.url,
      database: a.database,
      keyPrefix: a.keyPrefix,
    });
    try {
      const id = randomUserId();
      await setName(a, id, "old");
      await expect.poll(() => nameOn(short, id)).toBe("old");
      // A change no event announces: straight into the database, and out of Redis.
      await a.app.stores.db.query("UPDATE profiles SET first_name = 'new', version = nextval('row_version_seq') WHERE user_id = $1", [id]);
      await a.redis.del(a.keys.profile(id));
      const changed = Date.now();
      await expect.poll(() => nameOn(short, id), { timeout: 3000, interval: 20 }).toBe("new");
      expect(Date.now() - changed).toBeLessThan(300 + 700);
    } finally {
      await short.close();
    }
  });
});
