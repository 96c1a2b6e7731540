// A stampede across replicas: concurrent misses for one cold key on two
// instances make exactly one PostgreSQL query, thanks to the lease in Redis.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LEASE_PREFIX } from "../src/store/cache-store.js";
import { CountingDatabase } from "./support/counting-database.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let a: TestService;
let b: TestService;
const counters: CountingDatabase[] = [];
let token: string;

const count =
  (db: CountingDatabase) =>
  (stores: Parameters<NonNullable<Parameters<typeof startTestService>[0]["decorateStores"]>>[0]) => ({
    ...stores,
    db,
  });

beforeAll(async () => {
  // The test process runs both servers and 1,000 clients on one event loop; a generous
  // Redis timeout keeps a busy loop from passing for a sick Redis, and generous lease times
  // keep the one filler's lease (2 s by default) from running out while that loop is busy:
  // a loaded CI run saw it expire, and a second reader query PostgreSQL, as designed.
  const env = { REDIS_TIMEOUT_MS: "2000", CACHE_LEASE_TTL_MS: "10000", CACHE_LEASE_WAIT_MS: "10000" };
  a = await startTestService({
    label: "stampede",
    env,
    decorateStores: (stores) => {
      const db = new CountingDatabase(stores.db);
      counters.push(db);
      return count(db)(stores);
    },
  });
  b = await startTestService({
    label: "stampede_b",
    env,
    database: a.database,
    keyPrefix: a.keyPrefix,
    decorateStores: (stores) => {
      const db = new CountingDatabase(stores.db);
      counters.push(db);
      return count(db)(stores);
    },
  });
  token = await mintToken("loadtest", { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

async function redisFallbacks(): Promise<number> {
  let n = 0;
  for (const svc of [a, b]) for (const v of (await svc.app.metrics.redisFallbacks.get()).values) n += v.value;
  return n;
}

const profileReads = () => counters.reduce((n, db) => n + db.count(/FROM profiles WHERE/), 0);

describe("a stampede on one cold key across two instances", () => {
  it("makes exactly one PostgreSQL query for 1,000 concurrent reads, and fails nobody", async () => {
    const id = randomUserId();
    await a.grpc.unary("updateProfile", { userId: id, profile: { firstName: "hot" } }, token);
    for (const db of counters) db.reset();
    const fallbacksBefore = await redisFallbacks();
    const headers = { authorization: `Bearer ${token}` };
    const results = await Promise.allSettled(
      Array.from({ length: 1000 }, (_, i) =>
        i % 2 === 0
          ? a.grpc.unary("getProfile", { userId: id }, token)
          : b.connect.getProfile({ userId: id }, { headers }),
      ),
    );
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    expect(new Set(results.map((r) => (r.status === "fulfilled" ? r.value.profile?.firstName : "")))).toEqual(
      new Set(["hot"]),
    );
    // A read that gave up on Redis (a timeout on a saturated test machine, an
    // open breaker) is answered by PostgreSQL by design, and counted: only the
    // reads that went through the lease must come down to one query.
    const gaveUpOnRedis = (await redisFallbacks()) - fallbacksBefore;
    const figures = `${profileReads()} queries, ${gaveUpOnRedis} Redis fallbacks`;
    expect(profileReads(), figures).toBeGreaterThanOrEqual(1);
    expect(profileReads(), figures).toBeLessThanOrEqual(1 + gaveUpOnRedis);
  });

  it("does not let a dead filler hold readers past its lease", async () => {
    const id = randomUserId();
    await a.grpc.unary("updateProfile", { userId: id, profile: { firstName: "orphaned" } }, token);
    // A filler on some third replica took the lease and died: nobody will fill or release it.
    await a.redis.set(a.keys.profile(id), `${LEASE_PREFIX}dead-replica:1`, "PX", 300);
    for (const db of counters) db.reset();
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).grpc.unary("getProfile", { userId: id }, token)),
    );
    expect(results.every((r) => r.profile?.firstName === "orphaned")).toBe(true);
    // Readers waited for the lease to expire, then one of them filled the key.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(profileReads()).toBeLessThanOrEqual(2);
    expect(JSON.parse((await a.redis.get(a.keys.profile(id)))!).first_name).toBe("orphaned");
  });
});
