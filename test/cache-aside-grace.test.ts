// Grace (CACHE_GRACE_SECONDS): a value past its TTL is served, marked stale,
// only while PostgreSQL cannot be reached, and never once a write has voided
// it. Below the RPC layer on both stores (two CacheAsides on one store stand
// for two replicas), then through the service with the stale-fill race's
// barrier, where a write lands between a reader's lease and its failed load.

import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheAside, type Entity } from "../src/cache/cache-aside.js";
import { SuspectKeys } from "../src/cache/suspect-keys.js";
import { Metrics } from "../src/metrics/metrics.js";
import { parseGraceLease, type CacheStore } from "../src/store/cache-store.js";
import { DatabaseBusyError, DatabaseUnavailableError } from "../src/store/database.js";
import { FailurePolicy, GuardedCacheStore } from "../src/store/failure-policy.js";
import { MemoryCacheStore } from "../src/store/memory-cache-store.js";
import { RedisCacheStore } from "../src/store/redis-cache-store.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { grpc } from "./support/grpc-client.js";
import { OutageDatabase } from "./support/outage-database.js";
import { testRedisUrl, uniqueKeyPrefix } from "./support/servers.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let redis: Redis | Cluster;
beforeAll(async () => {
  redis = createRedisClient({ url: testRedisUrl, cluster: false });
  expect(await waitUntilReady(redis, 5000)).toBe(true);
});
afterAll(() => redis?.disconnect());

type Barrier = { id: string; reached: () => void; release: Promise<void> };

/** A table in memory that PostgreSQL's failures can be played on. */
class Table {
  readonly rows = new Map<string, string>();
  /** How loads fail: as an unreachable server, a saturated pool, or not at all. */
  down: "unreachable" | "busy" | undefined;
  /** While set, a load of this id waits for `release` before it runs. */
  hold: Barrier | undefined;

  entity(prefix: string, ttlSeconds: number): Entity<string> {
    return {
      type: "profile",
      ttlSeconds,
      key: (id) => `${prefix}profile:${id}`,
      encode: (v) => JSON.stringify({ v }),
      decode: (raw) => (JSON.parse(raw) as { v: string }).v,
      load: async (ids) => {
        const hold = this.hold;
        if (hold !== undefined && ids.includes(hold.id)) {
          hold.reached();
          await hold.release;
        }
        if (this.down === "unreachable") throw new DatabaseUnavailableError(new Error("connect ECONNREFUSED"));
        if (this.down === "busy") throw new DatabaseBusyError(new Error("timeout exceeded when trying to connect"));
        return new Map(ids.flatMap((id) => (this.rows.has(id) ? [[id, this.rows.get(id)!] as const] : [])));
      },
    };
  }
}

function barrier(id: string): { hold: Barrier; atBarrier: Promise<void>; release: () => void } {
  let reached!: () => void;
  let release!: () => void;
  const atBarrier = new Promise<void>((r) => (reached = r));
  return { hold: { id, reached, release: new Promise<void>((r) => (release = r)) }, atBarrier, release };
}

/** One replica: its own CacheAside (leases, flights, metrics) on the shared store. */
function replica(store: CacheStore, graceSeconds: number, suspect?: SuspectKeys) {
  const metrics = new Metrics();
  const aside = new CacheAside({ store, metrics, suspect }, { leaseWaitMs: 1000, graceSeconds });
  const staleServed = async () => (await metrics.cacheStaleServed.get()).values[0]?.value ?? 0;
  return { aside, metrics, staleServed };
}

const stores: [string, () => { store: CacheStore; prefix: string }][] = [
  ["MemoryCacheStore", () => ({ store: new MemoryCacheStore({ maxBytes: 1024 * 1024 }), prefix: "" })],
  [
    "RedisCacheStore",
    () => ({
      store: new GuardedCacheStore(new RedisCacheStore(redis), new FailurePolicy({ timeoutMs: 1000 })),
      prefix: uniqueKeyPrefix("aside_grace"),
    }),
  ],
];

describe.each(stores)("CacheAside with grace on %s", (_name, make) => {
  // TTL 0: every value is past its fresh time as soon as it lands, with all of its grace left.
  const setup = (graceSeconds = 300, ttlSeconds = 0, suspect?: SuspectKeys) => {
    const { store, prefix } = make();
    const table = new Table();
    const entity = table.entity(prefix, ttlSeconds);
    const cached = async (id: string) => (await store.getMany([entity.key(id)]))[0];
    return { store, table, entity, cached, ...replica(store, graceSeconds, suspect) };
  };

  it("serves the grace copy, marked stale and counted, only while PostgreSQL cannot be reached", async () => {
    const { table, entity, aside, cached, staleServed } = setup();
    table.rows.set("u", "old");
    expect(await aside.get(entity, "u")).toEqual({ value: "old", status: "miss" });
    await expect.poll(() => cached("u")).toBe(JSON.stringify({ v: "old" }));

    // PostgreSQL up: a value past its fresh time is a miss (the reader leases it and loads).
    table.rows.set("u", "reloaded");
    expect(await aside.get(entity, "u")).toEqual({ value: "reloaded", status: "miss" });
    await expect.poll(() => cached("u")).toBe(JSON.stringify({ v: "reloaded" }));

    table.down = "unreachable";
    expect(await aside.get(entity, "u")).toEqual({ value: "reloaded", status: "stale" });
    expect(await staleServed()).toBe(1);
    // The copy goes back under the lease, for the next reader.
    await expect.poll(() => cached("u")).toBe(JSON.stringify({ v: "reloaded" }));
    expect(await aside.get(entity, "u")).toEqual({ value: "reloaded", status: "stale" });
    expect(await staleServed()).toBe(2);
  });

  it("serves no grace copy when PostgreSQL answers otherwise (a saturated pool), or for a key never cached", async () => {
    const { table, entity, aside, cached } = setup();
    table.rows.set("u", "old");
    await aside.get(entity, "u");
    await expect.poll(() => cached("u")).toBe(JSON.stringify({ v: "old" }));
    table.down = "busy";
    await expect(aside.get(entity, "u")).rejects.toBeInstanceOf(DatabaseBusyError);
    table.down = "unreachable";
    await expect(aside.get(entity, "never-cached")).rejects.toBeInstanceOf(DatabaseUnavailableError);
  });

  it("never serves a suspect key (its invalidation failed here) from grace", async () => {
    const suspect = new SuspectKeys();
    const { table, entity, aside, cached } = setup(300, 0, suspect);
    table.rows.set("u", "old");
    await aside.get(entity, "u");
    await expect.poll(() => cached("u")).toBe(JSON.stringify({ v: "old" }));
    suspect.add([entity.key("u")], "1");
    table.down = "unreachable";
    await expect(aside.get(entity, "u")).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(parseGraceLease((await cached("u"))!)).toBeUndefined();
  });

  it("without grace (the default), an expired key is UNAVAILABLE in the same outage", async () => {
    const { table, entity, aside, cached } = setup(0, 1);
    table.rows.set("u", "old");
    await aside.get(entity, "u");
    await expect.poll(() => cached("u")).toBe(JSON.stringify({ v: "old" }));
    await expect.poll(() => cached("u"), { timeout: 3000 }).toBeNull();
    table.down = "unreachable";
    await expect(aside.get(entity, "u")).rejects.toBeInstanceOf(DatabaseUnavailableError);
  });

  it("a fresh value is a hit, grace or not", async () => {
    const { table, entity, aside, cached } = setup(300, 60);
    table.rows.set("u", "v");
    await aside.get(entity, "u");
    await expect.poll(() => cached("u")).toBe(JSON.stringify({ v: "v" }));
    table.down = "unreachable";
    expect(await aside.get(entity, "u")).toEqual({ value: "v", status: "hit" });
  });

  // The forced interleaving: a reader has leased the key (with the grace copy)
  // and not yet asked PostgreSQL; a reader on another replica waits on that
  // lease, having seen the copy; a write commits and invalidates; then
  // PostgreSQL becomes unreachable and the first reader asks it.
  it("serves no grace copy of the old version after a write, to readers waiting or arriving", async () => {
    const { store, table, entity, aside, cached, staleServed } = setup();
    const other = replica(store, 300);
    table.rows.set("u", "old");
    await aside.get(entity, "u");
    await expect.poll(() => cached("u")).toBe(JSON.stringify({ v: "old" }));

    const { hold, atBarrier, release } = barrier("u");
    table.hold = hold;
    const slowRead = aside.get(entity, "u");
    await atBarrier;
    table.hold = undefined;
    expect(parseGraceLease((await cached("u"))!)?.copy).toBe(JSON.stringify({ v: "old" }));
    const waiting = other.aside.get(entity, "u"); // sees the grace lease, copy included, and polls
    await new Promise((r) => setTimeout(r, 30));

    table.rows.set("u", "new"); // the write commits...
    await aside.invalidate([entity.key("u")]); // ...and invalidates: acknowledged
    table.down = "unreachable";
    release();

    // The slow reader overlapped the write: the old version is a fair answer for it.
    expect(await slowRead).toEqual({ value: "old", status: "stale" });
    // The waiting reader's next look found the key empty: its own load fails, with nothing to fall back on.
    await expect(waiting).rejects.toBeInstanceOf(DatabaseUnavailableError);
    await new Promise((r) => setTimeout(r, 50)); // the slow reader's restore has run (and must not have landed)
    expect((await cached("u")) ?? "").not.toContain("old");
    for (const r of [aside, other.aside, replica(store, 300).aside]) {
      await expect(r.get(entity, "u")).rejects.toBeInstanceOf(DatabaseUnavailableError);
    }
    expect(await staleServed()).toBe(1);
    expect(await other.staleServed()).toBe(0);
  });
});

describe("the grace race through the service", () => {
  let token: string;
  beforeAll(async () => {
    token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
  });

  // reader leases the expired key (grace copy "old") → writer commits "new" and invalidates → PostgreSQL goes → reader loads.
  async function raceOnce(svc: TestService, db: OutageDatabase) {
    const id = randomUserId();
    const key = svc.keys.profile(id);
    await svc.grpc.unary("updateProfile", { userId: id, profile: { firstName: "old" } }, token);
    await svc.grpc.unary("getProfile", { userId: id }, token);
    await expect.poll(() => svc.redis.get(key)).toContain('"first_name":"old"');
    // Past its 1 s TTL, within its grace.
    await expect.poll(() => svc.redis.pttl(key), { timeout: 3000 }).toBeLessThanOrEqual(300_000);

    const { hold, atBarrier, release } = barrier(id);
    db.hold = { userId: id, reached: hold.reached, release: hold.release };
    const slowRead = svc.grpc.unary("getProfile", { userId: id }, token);
    await atBarrier;
    db.hold = undefined;
    const leased = parseGraceLease((await svc.redis.get(key))!);
    await svc.grpc.unary(
      "updateProfile",
      { userId: id, profile: { firstName: "new" }, updateMask: { paths: ["first_name"] } },
      token,
    );
    db.down = true;
    release();
    const overlapped = (await slowRead).profile?.firstName;
    await new Promise((r) => setTimeout(r, 100)); // the slow reader's restore has run
    const cached = await svc.redis.get(key);
    const after = await Promise.all(
      Array.from({ length: 5 }, () =>
        svc.grpc.unary("getProfile", { userId: id }, token).then(
          (res) => res.profile?.firstName,
          (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE,
        ),
      ),
    );
    db.down = false;
    return { leased, overlapped, cached, after };
  }

  const graceEnv = { PROFILE_CACHE_TTL_SECONDS: "1", CACHE_GRACE_SECONDS: "300" };

  it("never serves the old grace copy after the write: the reader's restore is voided with the key", async () => {
    let db!: OutageDatabase;
    const svc = await startTestService({
      label: "grace_race",
      env: graceEnv,
      decorateStores: (stores) => ({ ...stores, db: (db = new OutageDatabase(stores.db)) }),
    });
    try {
      const { leased, overlapped, cached, after } = await raceOnce(svc, db);
      expect(leased?.copy).toContain('"first_name":"old"');
      expect(overlapped).toBe("old"); // it overlapped the write: a fair answer
      expect(cached).toBeNull();
      expect(after).toEqual([true, true, true, true, true]); // UNAVAILABLE, never "old"
    } finally {
      await svc.close();
    }
  });

  it("fails (serves the old version after the write) when the restore is a plain SET, so the test above can fail", async () => {
    // Puts back whatever grace copy a reader was given, lease or not.
    const plainRestore = (inner: CacheStore): CacheStore => {
      const copies = new Map<string, string>();
      return Object.assign(Object.create(inner) as CacheStore, {
        async acquireLeases(keys: readonly string[], lease: string, ttlMs: number, graceMs?: number) {
          const replies = await inner.acquireLeases(keys, lease, ttlMs, graceMs);
          replies.forEach((r, i) => {
            const copy = r === null ? undefined : parseGraceLease(r)?.copy;
            if (copy !== undefined) copies.set(keys[i]!, copy);
          });
          return replies;
        },
        async restoreGrace(entries: readonly { key: string; lease: string }[]) {
          for (const { key } of entries) await redis.set(key, copies.get(key)!, "PX", 60_000);
          return entries.map(() => true);
        },
      });
    };
    let db!: OutageDatabase;
    const svc = await startTestService({
      label: "grace_race_naive",
      env: graceEnv,
      decorateStores: (stores) => ({
        ...stores,
        db: (db = new OutageDatabase(stores.db)),
        cache: plainRestore(stores.cache),
      }),
    });
    try {
      const { cached, after } = await raceOnce(svc, db);
      expect(cached).toContain('"first_name":"old"');
      expect(after).toContain("old");
    } finally {
      await svc.close();
    }
  });
});
