// Cache-aside reads with memcache-style leases (Facebook, NSDI 2013).
//
// A miss takes a lease on the key before reading PostgreSQL, and the fill lands
// only if the key still holds that lease. A write deletes the key, which voids
// any lease taken before it, so a slow reader can never put back a version older
// than a committed write. The lease also makes the other readers of a cold key
// (in this process or another replica) wait for the one filler instead of all
// querying PostgreSQL.

import { randomUUID } from "node:crypto";
import { CacheUnavailableError, REFRESH_PREFIX, type CacheStore, type LeasedFill } from "../store/cache-store.js";
import type { CacheStatus, CacheType, Metrics } from "../metrics/metrics.js";
import type { NearCache } from "./near-cache.js";

/** One cached table: how to name, encode and load its rows. */
export interface Entity<T> {
  readonly type: CacheType;
  readonly ttlSeconds: number;
  key(id: string): string;
  encode(value: T): string;
  decode(raw: string): T;
  /** One SQL round trip for all `ids`; absent rows are simply not in the map. */
  load(ids: readonly string[]): Promise<Map<string, T>>;
}

export interface Lookup<T = unknown> {
  entity: Entity<T>;
  id: string;
}

export interface Outcome<T = unknown> {
  value: T | null;
  status: CacheStatus;
}

export interface CacheAsideOptions {
  leaseTtlMs: number;
  /** How long a reader waits for another filler's value before reading PostgreSQL itself. */
  leaseWaitMs: number;
  /** TTL of "no such row" markers; 0 disables negative caching. */
  negativeTtlSeconds: number;
  /** After `breakerThreshold` failures in a row, reads skip the cache for this long (writes never skip it). */
  breakerMs: number;
  /**
   * Failures in a row that open the breaker. More than one, because a single
   * timeout can be a busy event loop rather than a sick Redis.
   */
  breakerThreshold: number;
  maxValueBytes: number;
  /**
   * XFetch's beta (VLDB 2015): above 0, a hit refreshes its key early with a
   * probability that rises as the TTL runs out, scaled by how long a load
   * takes, so a hot key is refilled before it expires. 0 turns it off.
   */
  earlyRefreshBeta?: number;
}

/** Test seam: lets a test hold a reader between its database read and its fill. */
export interface CacheAsideHooks {
  afterLoad?(keys: readonly string[]): Promise<void>;
}

// Raw values that are not JSON objects are our own markers.
const NEGATIVE = "~absent";
const LEASE_PREFIX = "~lease:";
export const MAX_CACHE_VALUE_BYTES = 1024 * 1024;

type Observed =
  | { kind: "value"; raw: string; refreshing?: boolean }
  | { kind: "negative" }
  | { kind: "lease"; lease: string }
  | { kind: "absent" };

function observe(raw: string | null): Observed {
  if (raw === null) return { kind: "absent" };
  if (raw === NEGATIVE) return { kind: "negative" };
  if (raw.startsWith(LEASE_PREFIX)) return { kind: "lease", lease: raw };
  // Under early refresh the old value is still served.
  if (raw.startsWith(REFRESH_PREFIX)) return { kind: "value", raw: raw.slice(raw.indexOf("|") + 1), refreshing: true };
  return { kind: "value", raw };
}

interface Entry {
  key: string;
  lookup: Lookup;
}

interface Flight {
  lease: string;
  promise: Promise<Outcome>;
}

export class CacheAside {
  // Fills this process is doing now, by key: readers that find our lease join them.
  private readonly localFills = new Map<string, Flight>();
  // Database reads made without a lease (cache down, or a filler too slow), by key.
  private readonly directLoads = new Map<string, Promise<unknown>>();
  // Scheduled, not yet issued, polls of keys leased by another replica.
  private readonly scheduledPolls = new Map<string, Promise<string | null>>();
  private readonly leasePrefix = `${LEASE_PREFIX}${randomUUID()}:`;
  private leaseCounter = 0;
  private cacheSkippedUntil = 0;
  private failuresInARow = 0;
  // Recent load time per table, in ms: XFetch's delta.
  private readonly loadMs = new Map<CacheType, number>();

  constructor(
    private readonly cache: CacheStore,
    private readonly options: CacheAsideOptions,
    private readonly metrics: Metrics,
    private readonly onCacheError: (operation: string, err: unknown) => void = () => {},
    private readonly hooks: CacheAsideHooks = {},
    private readonly near?: NearCache,
  ) {}

  async get<T>(entity: Entity<T>, id: string): Promise<Outcome<T>> {
    if (this.near !== undefined || (this.options.earlyRefreshBeta ?? 0) > 0) {
      const [outcome] = await this.read([{ entity, id } as Lookup]);
      return outcome as Outcome<T>;
    }
    // One key and nothing in front of Redis: read it, and lease it if it is
    // absent, in a single round trip (SET NX GET), so a miss costs no extra trip.
    const entry: Entry = { key: entity.key(id), lookup: { entity, id } as Lookup };
    const lease = this.nextLease();
    const current = await this.tryCache("get", () => this.cache.acquireLeases([entry.key], lease, this.options.leaseTtlMs));
    const [outcome] =
      current === undefined ? await this.loadDirect([entry], "bypass") : await this.afterLeasing([entry], current, lease, "hit");
    return outcome as Outcome<T>;
  }

  /**
   * Reads every lookup with one cache round trip. Misses add one lease round
   * trip, one SQL query per entity and one fill round trip. Results are aligned
   * with `lookups`; duplicates are read once.
   */
  async read(lookups: readonly Lookup[]): Promise<Outcome[]> {
    const index = new Map<string, number>();
    const entries: Entry[] = [];
    for (const lookup of lookups) {
      const key = lookup.entity.key(lookup.id);
      if (!index.has(key)) {
        index.set(key, entries.length);
        entries.push({ key, lookup });
      }
    }

    const results = this.near === undefined ? await this.readThrough(entries) : await this.readNearFirst(entries, this.near);
    if (entries.length === lookups.length) return results;
    return lookups.map((l) => results[index.get(l.entity.key(l.id))!]!);
  }

  /**
   * Caches `ids` that are not cached yet, with the same lease-guarded fill as
   * a miss: one lease round trip, one SQL query, one fill round trip. Keys
   * that hold a value or someone else's lease are left alone. Returns how
   * many rows were found and offered to the cache.
   */
  async warm<T>(entity: Entity<T>, ids: readonly string[]): Promise<number> {
    const entries: Entry[] = [...new Set(ids)].map((id) => ({ key: entity.key(id), lookup: { entity, id } as Lookup }));
    if (entries.length === 0) return 0;
    const lease = this.nextLease();
    const current = await this.cache.acquireLeases(
      entries.map((e) => e.key),
      lease,
      this.options.leaseTtlMs,
    );
    const granted = entries.filter((_, i) => current[i] === null);
    if (granted.length === 0) return 0;
    const { outcomes, landed } = this.loadAndFill(granted, lease);
    const found = (await outcomes).filter((o) => o.value !== null).length;
    await landed;
    return found;
  }

  /** One cache round trip for all entries, then leases, loads and fills for the misses. */
  private async readThrough(entries: readonly Entry[]): Promise<Outcome[]> {
    const keys = entries.map((e) => e.key);
    let raws: (string | null)[] | undefined;
    let ttls: number[] | undefined;
    if ((this.options.earlyRefreshBeta ?? 0) > 0) {
      const replies = await this.tryCache("get", () => this.cache.getManyWithTtl(keys));
      raws = replies?.map((r) => r.value);
      ttls = replies?.map((r) => r.ttlMs);
    } else {
      raws = await this.tryCache("get", () => this.cache.getMany(keys));
    }
    if (raws === undefined) return this.loadDirect(entries, "bypass");
    const results = new Array<Outcome>(entries.length);
    const absent: number[] = [];
    const pending: Promise<void>[] = [];
    entries.forEach((entry, i) => {
      const seen = observe(raws[i] ?? null);
      const hit = this.served(entry, seen, "hit");
      if (hit !== undefined) {
        this.metrics.cacheHits.inc({ cache_type: entry.lookup.entity.type });
        results[i] = hit;
        if (ttls !== undefined && seen.kind === "value" && !seen.refreshing && this.refreshDue(entry, ttls[i]!)) {
          void this.refreshEarly(entry, seen.raw);
        }
        return;
      }
      this.metrics.cacheMisses.inc({ cache_type: entry.lookup.entity.type });
      if (seen.kind === "absent") absent.push(i);
      else pending.push(this.afterObserving(entry, seen).then((o) => void (results[i] = o)));
    });
    if (absent.length > 0) {
      pending.push(
        this.lease(absent.map((i) => entries[i]!)).then((os) => os.forEach((o, j) => (results[absent[j]!] = o))),
      );
    }
    await Promise.all(pending);
    return results;
  }

  /** The near cache first; the rest through Redis, remembered for next time. */
  private async readNearFirst(entries: readonly Entry[], near: NearCache): Promise<Outcome[]> {
    const startedAt = near.begin();
    const results = new Array<Outcome>(entries.length);
    const rest: Entry[] = [];
    const restAt: number[] = [];
    entries.forEach((entry, i) => {
      const value = near.get(entry.key);
      if (value === undefined) {
        rest.push(entry);
        restAt.push(i);
        return;
      }
      this.metrics.nearCacheHits.inc({ cache_type: entry.lookup.entity.type });
      results[i] = { value, status: "hit" };
    });
    if (rest.length === 0) return results;
    const read = await this.readThrough(rest);
    read.forEach((outcome, j) => {
      results[restAt[j]!] = outcome;
      near.set(rest[j]!.key, outcome.value, startedAt);
    });
    return results;
  }

  /** Deletes keys after a write; never skipped, even while reads bypass the cache. */
  async invalidate(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.directLoads.delete(key);
    this.near?.invalidate(keys);
    await this.cache.delete(keys);
  }

  /** The value a cache observation serves, or undefined when it must be loaded. */
  private served(entry: Entry, seen: Observed, status: CacheStatus): Outcome | undefined {
    if (seen.kind === "negative") return { value: null, status };
    if (seen.kind !== "value") return undefined;
    try {
      return { value: entry.lookup.entity.decode(seen.raw), status };
    } catch (err) {
      // Undecodable (a foreign writer, an old format): never serve it.
      this.onCacheError("decode", err);
      return undefined;
    }
  }

  private afterObserving(entry: Entry, seen: Observed): Promise<Outcome> {
    if (seen.kind === "lease") {
      const local = this.localFills.get(entry.key);
      if (local !== undefined && local.lease === seen.lease) return local.promise;
      return this.waitForFiller(entry);
    }
    // A value we cannot decode: answer from the database and leave the key to its TTL or the next write.
    return this.loadDirect([entry], "miss").then((r) => r[0]!);
  }

  /** Takes leases on absent keys, fills those granted, and joins or waits on the rest. */
  private async lease(entries: readonly Entry[]): Promise<Outcome[]> {
    const lease = this.nextLease();
    const current = await this.tryCache("lease", () =>
      this.cache.acquireLeases(
        entries.map((e) => e.key),
        lease,
        this.options.leaseTtlMs,
      ),
    );
    if (current === undefined) return this.loadDirect(entries, "miss");
    return this.afterLeasing(entries, current, lease, "miss");
  }

  /**
   * Acts on what an acquireLeases call found: fills the keys it was granted,
   * and serves, joins or waits on the rest (with `status` for values found).
   */
  private afterLeasing(
    entries: readonly Entry[],
    current: readonly (string | null)[],
    lease: string,
    status: CacheStatus,
  ): Promise<Outcome[]> {
    const results: (Outcome | Promise<Outcome>)[] = new Array(entries.length);
    const granted: Entry[] = [];
    const grantedAt: number[] = [];
    entries.forEach((entry, i) => {
      const seen = observe(current[i] ?? null);
      if (seen.kind === "absent") {
        granted.push(entry);
        grantedAt.push(i);
        return;
      }
      const found = this.served(entry, seen, status);
      if (found !== undefined && status === "hit") this.metrics.cacheHits.inc({ cache_type: entry.lookup.entity.type });
      if (found === undefined && status === "hit") this.metrics.cacheMisses.inc({ cache_type: entry.lookup.entity.type });
      results[i] = found ?? this.afterObserving(entry, seen);
    });
    if (granted.length > 0) {
      if (status === "hit") for (const e of granted) this.metrics.cacheMisses.inc({ cache_type: e.lookup.entity.type });
      const { outcomes, landed } = this.loadAndFill(granted, lease);
      granted.forEach((entry, j) => {
        const promise = outcomes.then((all) => all[j]!);
        promise.catch(() => {});
        this.localFills.set(entry.key, { lease, promise });
        results[grantedAt[j]!] = promise;
      });
      // Readers here that find our lease join our load until the fill has landed.
      void landed.finally(() => {
        for (const { key } of granted) if (this.localFills.get(key)?.lease === lease) this.localFills.delete(key);
      });
    }
    return Promise.all(results);
  }

  /**
   * Loads the leased rows; `outcomes` resolves as soon as PostgreSQL has
   * answered, and the fill lands in the background (`landed`), so a miss
   * costs no extra wait for Redis. The lease keeps the fill honest either way.
   */
  private loadAndFill(entries: readonly Entry[], lease: string): { outcomes: Promise<Outcome[]>; landed: Promise<void> } {
    let settle!: (fills: readonly LeasedFill[] | undefined) => void;
    const fillsReady = new Promise<readonly LeasedFill[] | undefined>((resolve) => (settle = resolve));
    const outcomes = (async () => {
      let loaded: Map<string, unknown>;
      try {
        loaded = await this.loadGrouped(entries);
        await this.hooks.afterLoad?.(entries.map((e) => e.key));
      } catch (err) {
        // Release the leases so other readers do not wait out their TTL.
        settle(entries.map(({ key }) => ({ key, lease, value: "", ttlSeconds: 0 })));
        throw err;
      }
      settle(entries.map(({ key, lookup }) => this.fillFor(key, lookup, lease, loaded.get(key))));
      return entries.map(({ key }): Outcome => ({ value: loaded.get(key) ?? null, status: "miss" }));
    })();
    const landed = fillsReady.then(async (fills) => {
      if (fills === undefined) return;
      // After the answer has been written: the caller should not wait for our bookkeeping.
      await new Promise((resolve) => setImmediate(resolve));
      const ok = await this.tryCache("fill", () => this.cache.fillLeased(fills));
      ok?.forEach((landedOne, i) => {
        if (!landedOne && fills[i]!.ttlSeconds > 0) {
          this.metrics.cacheFillsRejected.inc({ cache_type: entries[i]!.lookup.entity.type });
        }
      });
    });
    return { outcomes, landed };
  }

  private fillFor(key: string, lookup: Lookup, lease: string, value: unknown): LeasedFill {
    if (value === undefined) return { key, lease, value: NEGATIVE, ttlSeconds: this.options.negativeTtlSeconds };
    const raw = lookup.entity.encode(value);
    if (Buffer.byteLength(raw) > this.options.maxValueBytes) {
      this.metrics.cacheValuesTooLarge.inc({ cache_type: lookup.entity.type });
      return { key, lease, value: "", ttlSeconds: 0 };
    }
    return { key, lease, value: raw, ttlSeconds: lookup.entity.ttlSeconds };
  }

  private nextLease(): string {
    return `${this.leasePrefix}${++this.leaseCounter}`;
  }

  private refreshDue(entry: Entry, ttlMs: number): boolean {
    if (ttlMs <= 0) return false;
    const delta = this.loadMs.get(entry.lookup.entity.type) ?? 5;
    return -delta * this.options.earlyRefreshBeta! * Math.log(Math.random()) >= ttlMs;
  }

  /** Refills a key that is about to expire while readers keep getting its current value. */
  private async refreshEarly(entry: Entry, current: string): Promise<void> {
    const lease = this.nextLease();
    const mine = await this.tryCache("refresh", () => this.cache.beginRefresh(entry.key, current, lease));
    if (!mine) return;
    this.metrics.earlyRefreshes.inc({ cache_type: entry.lookup.entity.type });
    const { outcomes, landed } = this.loadAndFill([entry], lease);
    await outcomes.catch((err: unknown) => this.onCacheError("refresh", err));
    await landed;
  }

  /** Another filler holds the lease: poll for its value, then fall back to PostgreSQL. */
  private async waitForFiller(entry: Entry): Promise<Outcome> {
    const deadline = Date.now() + this.options.leaseWaitMs;
    let delay = 2;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      let raw: string | null;
      try {
        raw = await this.pollSoon(entry.key, Math.min(delay, remaining));
      } catch (err) {
        this.cacheFailed("poll", err);
        break;
      }
      const seen = observe(raw);
      const served = this.served(entry, seen, "miss");
      if (served !== undefined) return served;
      // The lease was voided by a write, or expired with its filler: try to become the filler.
      if (seen.kind === "absent") return (await this.lease([entry]))[0]!;
      if (seen.kind === "value") break;
      const local = this.localFills.get(entry.key);
      if (local !== undefined && seen.kind === "lease" && local.lease === seen.lease) return local.promise;
      delay = Math.min(delay * 2, 20);
    }
    return (await this.loadDirect([entry], "miss"))[0]!;
  }

  // Readers waiting on the same key share a poll, but only one not yet sent:
  // a reader never adopts an answer that Redis computed before it arrived.
  private pollSoon(key: string, delayMs: number): Promise<string | null> {
    let poll = this.scheduledPolls.get(key);
    if (poll === undefined) {
      poll = new Promise<string | null>((resolve, reject) => {
        setTimeout(() => {
          this.scheduledPolls.delete(key);
          this.cache.getMany([key]).then((r) => resolve(r[0] ?? null), reject);
        }, delayMs);
      });
      this.scheduledPolls.set(key, poll);
    }
    return poll;
  }

  /** Reads PostgreSQL without filling; concurrent readers of a key share one query. */
  private async loadDirect(entries: readonly Entry[], status: CacheStatus): Promise<Outcome[]> {
    const values: Promise<unknown>[] = [];
    const toLoad: Entry[] = [];
    const toLoadAt: number[] = [];
    entries.forEach((entry, i) => {
      const flight = this.directLoads.get(entry.key);
      if (flight !== undefined) values[i] = flight;
      else {
        toLoad.push(entry);
        toLoadAt.push(i);
      }
    });
    if (toLoad.length > 0) {
      const loaded = this.loadGrouped(toLoad);
      toLoad.forEach(({ key }, j) => {
        const flight = loaded.then((m) => m.get(key) ?? null);
        this.directLoads.set(key, flight);
        const forget = () => {
          if (this.directLoads.get(key) === flight) this.directLoads.delete(key);
        };
        flight.then(forget, forget);
        values[toLoadAt[j]!] = flight;
      });
    }
    return (await Promise.all(values)).map((value) => ({ value, status }));
  }

  /** One SQL query per entity, results keyed by cache key. */
  private async loadGrouped(entries: readonly Entry[]): Promise<Map<string, unknown>> {
    const byEntity = new Map<Entity<unknown>, string[]>();
    for (const { lookup } of entries) {
      const ids = byEntity.get(lookup.entity) ?? [];
      ids.push(lookup.id);
      byEntity.set(lookup.entity, ids);
    }
    const out = new Map<string, unknown>();
    await Promise.all(
      [...byEntity].map(async ([entity, ids]) => {
        this.metrics.dbLoads.inc({ cache_type: entity.type });
        const started = performance.now();
        const rows = await entity.load(ids);
        const ms = performance.now() - started;
        this.loadMs.set(entity.type, 0.8 * (this.loadMs.get(entity.type) ?? ms) + 0.2 * ms);
        for (const [id, row] of rows) out.set(entity.key(id), row);
      }),
    );
    return out;
  }

  /** Runs a cache call, or returns undefined when the cache is down or skipped. */
  private async tryCache<T>(operation: string, call: () => Promise<T>): Promise<T | undefined> {
    if (Date.now() < this.cacheSkippedUntil) {
      this.metrics.redisFallbacks.inc({ operation });
      return undefined;
    }
    try {
      const result = await call();
      this.failuresInARow = 0;
      return result;
    } catch (err) {
      this.cacheFailed(operation, err);
      return undefined;
    }
  }

  private cacheFailed(operation: string, err: unknown): void {
    this.metrics.redisFallbacks.inc({ operation });
    if (err instanceof CacheUnavailableError && ++this.failuresInARow >= this.options.breakerThreshold) {
      this.cacheSkippedUntil = Date.now() + this.options.breakerMs;
      this.failuresInARow = 0;
    }
    this.onCacheError(operation, err);
  }
}
