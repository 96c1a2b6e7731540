// The cache-aside guarantees hold on either cache store: a fill that started
// before a write never lands after it, and concurrent misses share one load.

import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../src/metrics/metrics.js";
import { CacheAside, type Entity } from "../src/cache/cache-aside.js";
import type { CacheStore } from "../src/store/cache-store.js";
import { FailurePolicy, GuardedCacheStore } from "../src/store/failure-policy.js";
import { MemoryCacheStore } from "../src/store/memory-cache-store.js";
import { RedisCacheStore } from "../src/store/redis-cache-store.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { testRedisUrl, uniqueKeyPrefix } from "./support/servers.js";

let redis: Redis | Cluster;
beforeAll(async () => {
  redis = createRedisClient({ url: testRedisUrl, cluster: false });
  expect(await waitUntilReady(redis, 5000)).toBe(true);
});
afterAll(() => redis?.disconnect());

/** A table in memory that counts its loads, behind a cache. */
class Fixture {
  readonly rows = new Map<string, string>();
  loads = 0;
  readonly metrics = new Metrics();
  readonly entity: Entity<string>;
  readonly aside: CacheAside;
  /** While set, a load of this id stops after reading (holds the SELECT's result) until `release` resolves. */
  hold: { id: string; reached: () => void; release: Promise<void> } | undefined;

  constructor(
    readonly store: CacheStore,
    prefix: string,
  ) {
    this.entity = {
      type: "profile",
      ttlSeconds: 60,
      key: (id) => `${prefix}profile:${id}`,
      encode: (v) => JSON.stringify({ v }),
      decode: (raw) => (JSON.parse(raw) as { v: string }).v,
      load: async (ids) => {
        this.loads++;
        await new Promise((r) => setTimeout(r, 5));
        const found = new Map(ids.flatMap((id) => (this.rows.has(id) ? [[id, this.rows.get(id)!] as const] : [])));
        const hold = this.hold;
        if (hold !== undefined && ids.includes(hold.id)) {
          hold.reached();
          await hold.release;
        }
        return found;
      },
    };
    this.aside = new CacheAside({ store, metrics: this.metrics }, { leaseWaitMs: 500 });
  }

  async rejectedFills(): Promise<number> {
    return (await this.metrics.cacheFillsRejected.get()).values[0]?.value ?? 0;
  }
}

describe.each([
  ["MemoryCacheStore", () => new Fixture(new MemoryCacheStore({ maxBytes: 1024 * 1024 }), "")],
  [
    "RedisCacheStore",
    () =>
      new Fixture(
        new GuardedCacheStore(new RedisCacheStore(redis), new FailurePolicy({ timeoutMs: 1000 })),
        uniqueKeyPrefix("aside_stores"),
      ),
  ],
])("CacheAside on %s", (_name, make) => {
  it("drops a fill whose lease a write voided, so the old value is never cached", async () => {
    const f = make();
    f.rows.set("u1", "old");
    let reached!: () => void;
    let release!: () => void;
    const atBarrier = new Promise<void>((r) => (reached = r));
    f.hold = { id: "u1", reached, release: new Promise<void>((r) => (release = r)) };

    const slowRead = f.aside.get(f.entity, "u1");
    await atBarrier; // the reader has loaded "old" and not yet filled
    f.rows.set("u1", "new"); // the write commits...
    await f.aside.invalidate([f.entity.key("u1")]); // ...and invalidates
    f.hold = undefined;
    release();

    expect((await slowRead).value).toBe("old"); // it overlapped the write: a fair answer
    // Fills land in the background, after the answer.
    await expect.poll(() => f.rejectedFills()).toBe(1);
    expect(await f.store.getMany([f.entity.key("u1")])).toEqual([null]);
    expect(await f.aside.get(f.entity, "u1")).toEqual({ value: "new", status: "miss" });
    await expect.poll(() => f.aside.get(f.entity, "u1")).toEqual({ value: "new", status: "hit" });
  });

  it("answers N concurrent misses of one key with one load", async () => {
    const f = make();
    f.rows.set("u2", "v");
    const results = await Promise.all(Array.from({ length: 50 }, () => f.aside.get(f.entity, "u2")));
    expect(results.every((r) => r.value === "v")).toBe(true);
    expect(f.loads).toBe(1);
  });

  it("caches a missing row briefly, and a create clears it", async () => {
    const f = make();
    expect((await f.aside.get(f.entity, "u3")).value).toBeNull();
    await expect.poll(() => f.aside.get(f.entity, "u3")).toEqual({ value: null, status: "hit" });
    expect(f.loads).toBe(1);
    f.rows.set("u3", "created");
    await f.aside.invalidate([f.entity.key("u3")]);
    expect((await f.aside.get(f.entity, "u3")).value).toBe("created");
  });
});
