// Startup warm-up: batched, version-safe, bounded.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgDatabase } from "../src/store/pg-database.js";
import { CountingCacheStore } from "./support/counting-cache-store.js";
import { CountingDatabase } from "./support/counting-database.js";
import { createTestDatabase, type TestDatabase } from "./support/servers.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let seed: TestService;
const ids: string[] = [];

beforeAll(async () => {
  seed = await startTestService({ label: "warmup" });
  const token = await mintToken("seeder", { scope: "profiles:write" });
  for (let i = 0; i < 30; i++) {
    const id = randomUserId();
    ids.push(id);
    await seed.grpc.unary("updateProfile", { userId: id, profile: { firstName: `u${i}` } }, token);
  }
});
afterAll(async () => {
  await seed?.close();
});

describe("warm-up", () => {
  it("caches the most recently updated profiles with one ANY($1) query and two Redis round trips", async () => {
    let db!: CountingDatabase;
    let cache!: CountingCacheStore;
    const svc = await startTestService({
      label: "warmup_recent",
      database: seed.database,
      keyPrefix: seed.keyPrefix,
      env: { WARMUP_LIMIT: "20" },
      decorateStores: (stores) => {
        db = new CountingDatabase(stores.db);
        cache = new CountingCacheStore(stores.cache);
        return { ...stores, db, cache };
      },
    });
    try {
      await seed.redis.del(...ids.map((id) => seed.keys.profile(id)));
      // A value already cached (say, filled by a reader a moment ago) is never overwritten.
      const alreadyCached = ids.at(-1)!;
      await seed.redis.set(seed.keys.profile(alreadyCached), '{"sentinel":true}', "EX", 60);
      db.reset();
      cache.reset();
      const result = await svc.app.warmUp();
      expect(result).toMatchObject({ ids: 20, warmed: 19, timedOut: false });
      expect(await seed.redis.get(seed.keys.profile(alreadyCached))).toBe('{"sentinel":true}');
      expect(db.queries.filter((q) => /FROM profiles/.test(q))).toEqual([
        expect.stringContaining("ORDER BY updated_at DESC LIMIT $1"),
        expect.stringContaining("= ANY($1"),
      ]);
      expect(cache.calls.map((c) => c.method)).toEqual(["acquireLeases", "fillLeased"]);
      const newest = ids.slice(-20);
      expect(await seed.redis.exists(...newest.map((id) => seed.keys.profile(id)))).toBe(20);
      expect(await seed.redis.exists(...ids.slice(0, 10).map((id) => seed.keys.profile(id)))).toBe(0);
      const ttl = await seed.redis.ttl(seed.keys.profile(newest[0]!));
      expect(ttl).toBeGreaterThan(290);
    } finally {
      await svc.close();
    }
  });

  it("takes ids from WARMUP_QUERY on WARMUP_DATABASE_URL, like the seed's auth database query", async () => {
    const auth: TestDatabase = await createTestDatabase("warmup_auth");
    const authDb = new PgDatabase({ connectionString: auth.url, max: 1, statementTimeoutMs: 5000 });
    await authDb.query("CREATE TABLE users (id uuid PRIMARY KEY, last_login_at timestamptz NOT NULL)");
    await authDb.query("INSERT INTO users SELECT unnest($1::uuid[]), now() - interval '1 hour'", [ids.slice(0, 5)]);
    await authDb.query("INSERT INTO users SELECT unnest($1::uuid[]), now() - interval '3 days'", [ids.slice(5, 10)]);
    await authDb.close();
    const svc = await startTestService({
      label: "warmup_query",
      database: seed.database,
      keyPrefix: seed.keyPrefix,
      env: {
        WARMUP_DATABASE_URL: auth.url,
        WARMUP_QUERY: "SELECT id FROM users WHERE last_login_at > now() - interval '24 hours' LIMIT 1000",
      },
    });
    try {
      await seed.redis.del(...ids.map((id) => seed.keys.profile(id)));
      const result = await svc.app.warmUp();
      expect(result).toMatchObject({ ids: 5, warmed: 5 });
      expect(await seed.redis.exists(...ids.slice(0, 5).map((id) => seed.keys.profile(id)))).toBe(5);
      expect(await seed.redis.exists(...ids.slice(5, 10).map((id) => seed.keys.profile(id)))).toBe(0);
    } finally {
      await svc.close();
      await auth.drop();
    }
  });

  it("gives up at its deadline without failing", async () => {
    const svc = await startTestService({
      label: "warmup_bounded",
      database: seed.database,
      keyPrefix: seed.keyPrefix,
      env: { WARMUP_LIMIT: "30", WARMUP_TIMEOUT_MS: "1" },
    });
    try {
      const result = await svc.app.warmUp();
      // A deadline of 1 ms cannot fit a database and a Redis round trip.
      expect(result.timedOut).toBe(true);
    } finally {
      await svc.close();
    }
  });
});
