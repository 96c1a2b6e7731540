// Cache-aside reads with memcache-style leases (Facebook, NSDI 2013).
//
// A miss takes a lease on the key before reading PostgreSQL, and the fill lands
// only if the key still holds that lease. A write deletes the key, which voids
// any lease taken before it, so a slow reader can never put back a version older
// than a committed write. The lease also makes the other readers of a cold key
// (in this process or another replica) wait for the one filler instead of all
// querying PostgreSQL.
//
// Every read starts with one read-or-lease call for all its keys; what follows
// is the lease state machine, `step`. Timeouts and the breaker are the store's
// (GuardedCacheStore): here, a failed cache call just means PostgreSQL.
// With grace (graceSeconds > 0), values are kept past their TTL as grace
// copies, served only while PostgreSQL cannot be reached (grace.ts).

import { randomUUID } from "node:crypto";
import { ABSENT, GRACE_SEPARATOR, isLease, LEASE_PREFIX, type CacheStore } from "../store/cache-store.js";
import type { Metrics } from "../metrics/metrics.js";
import { errorSummary, type Logger } from "../log/logger.js";
import { rateLimited } from "../log/rate-limited.js";
import { graceCopyOf, orGraceCopy, Stale } from "./grace.js";
import type { SuspectKeys } from "./suspect-keys.js";
import { inSpan } from "../tracing/tracing.js";

/** The cached tables; the cache_type label of the cache metrics. */
export type CacheType = "profile" | "preferences";
/**
 * How a read was answered: from the cache, by a load after a miss, around an
 * unusable cache, or from a grace copy while PostgreSQL was unreachable.
 */
export type CacheStatus = "hit" | "miss" | "bypass" | "stale";

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

export interface Outcome<T> {
  value: T | null;
  status: CacheStatus;
}

/** Ids of one entity to read together with others; `outcomes` (aligned with `ids`) once `read` resolved. */
export class Lookup<T> {
  outcomes: Outcome<T>[] = [];
  constructor(
    readonly entity: Entity<T>,
    readonly ids: readonly string[],
  ) {}
}

export interface CacheAsideDeps {
  store: CacheStore;
  metrics: Metrics;
  /** Keys whose invalidation failed here: read from PostgreSQL, not the cache, until it lands. */
  suspect?: SuspectKeys;
  /** Told of failed cache calls, at most once per operation per interval. */
  log?: Logger;
}

export interface CacheAsideOptions {
  leaseTtlMs: number;
  /** How long a reader waits for another filler's value before reading PostgreSQL itself. */
  leaseWaitMs: number;
  /** TTL of "no such row" markers; 0 disables negative caching. */
  negativeTtlSeconds: number;
  maxValueBytes: number;
  /** How long values are kept past their TTL, to be served while PostgreSQL cannot be reached; 0 turns it off. */
  graceSeconds: number;
}

export const CACHE_ASIDE_DEFAULTS: CacheAsideOptions = {
  leaseTtlMs: 2000,
  leaseWaitMs: 3000,
  negativeTtlSeconds: 30,
  maxValueBytes: 1024 * 1024,
  graceSeconds: 0,
};

type Reply = string | null;

/** One key of a read. Values are `unknown` here: each comes from its own slot's entity, so no cast is needed. */
interface Slot {
  entity: Entity<unknown>;
  id: string;
  key: string;
}

/** What a step leads to: a value served straight from the reply (a hit), or work that ends in one. */
type Step = { hit: true; value: unknown } | { hit: false; value: Promise<unknown> };

// Work in this process that later readers of a key may join: a fill (until it
// has landed), a wait on another replica's lease, or a load without the cache.
// A reader joins only work tagged with the lease it saw itself, so it never
// adopts an answer read before it arrived (a key never holds a lease twice).
interface Flight {
  tag: string;
  value: Promise<unknown>;
}
const NO_CACHE = "no cache";

export class CacheAside {
  private readonly options: CacheAsideOptions;
  private readonly flights = new Map<string, Flight>();
  private readonly leasePrefix = `${LEASE_PREFIX}${randomUUID()}:`;
  private leaseCount = 0;
  private readonly graceMs: number;

  constructor(
    private readonly deps: CacheAsideDeps,
    options: Partial<CacheAsideOptions> = {},
  ) {
    this.options = { ...CACHE_ASIDE_DEFAULTS, ...options };
    this.graceMs = this.options.graceSeconds * 1000;
  }

  async get<T>(entity: Entity<T>, id: string): Promise<Outcome<T>> {
    const [outcome] = await this.getMany(entity, [id]);
    return outcome!;
  }

  /** Outcomes aligned with `ids`. */
  async getMany<T>(entity: Entity<T>, ids: readonly string[]): Promise<Outcome<T>[]> {
    const lookup = new Lookup(entity, ids);
    await this.read([lookup]);
    return lookup.outcomes;
  }

  /**
   * Reads every lookup with one cache round trip; misses add one SQL query
   * per lookup and a fill in the background. Duplicate ids are read once.
   */
  async read(lookups: readonly Lookup<unknown>[]): Promise<void> {
    const { store, metrics, suspect } = this.deps;
    const outcomes = new Map<string, Outcome<unknown>>();
    const pending: Promise<unknown>[] = [];
    const later = (slot: Slot, value: Promise<unknown>, status: CacheStatus) =>
      pending.push(
        value.then((v) => outcomes.set(slot.key, v instanceof Stale ? this.served(slot, v) : { value: v, status })),
      );
    const bypass = (slots: readonly Slot[]) => this.load(slots).forEach((v, i) => later(slots[i]!, v, "bypass"));

    // Keys whose invalidation failed here go to PostgreSQL; the rest to the cache, in one call.
    const groups = lookups.map((l) => {
      const slots = [...new Set(l.ids)].map((id): Slot => ({ entity: l.entity, id, key: l.entity.key(id) }));
      const doubted = suspect === undefined || suspect.empty ? [] : slots.filter((s) => suspect.has(s.key));
      if (doubted.length > 0) metrics.redisFallbacks.inc({ operation: "suspect" }, doubted.length);
      bypass(doubted);
      return doubted.length === 0 ? slots : slots.filter((s) => !doubted.includes(s));
    });
    const keys = groups.flatMap((slots) => slots.map((s) => s.key));
    const lease = this.nextLease();
    const replies =
      keys.length === 0
        ? []
        : await this.tryCache("get", () => store.acquireLeases(keys, lease, this.options.leaseTtlMs, this.graceMs));
    let at = 0;
    for (const slots of groups) {
      if (replies === undefined) {
        bypass(slots);
        continue;
      }
      this.step(slots, replies.slice(at, (at += slots.length)), lease).forEach((step, i) => {
        const slot = slots[i]!;
        (step.hit ? metrics.cacheHits : metrics.cacheMisses).inc({ cache_type: slot.entity.type });
        if (step.hit) outcomes.set(slot.key, { value: step.value, status: "hit" });
        else later(slot, step.value, "miss");
      });
    }
    await Promise.all(pending);
    for (const l of lookups) l.outcomes = l.ids.map((id) => outcomes.get(l.entity.key(id))!);
  }

  /**
   * Caches `ids` that are not cached yet, with the same lease-guarded fill as
   * a miss. Keys that hold a value or someone else's lease are left alone.
   * Returns how many rows were found and offered to the cache.
   */
  async warm<T>(entity: Entity<T>, ids: readonly string[]): Promise<number> {
    const slots = [...new Set(ids)].map((id) => ({ entity, id, key: entity.key(id) }));
    if (slots.length === 0) return 0;
    const lease = this.nextLease();
    const keys = slots.map((s) => s.key);
    const replies = await this.deps.store.acquireLeases(keys, lease, this.options.leaseTtlMs);
    const { values, landed } = this.fill(
      slots.filter((_, i) => replies[i] === null),
      lease,
    );
    const found = (await Promise.all(values)).filter((v) => v !== null).length;
    await landed;
    return found;
  }

  /** Deletes keys after a write; never skipped, even while reads bypass the cache. */
  async invalidate(keys: readonly string[]): Promise<void> {
    // Work started before the write must not answer readers that start after it.
    for (const key of keys) this.flights.delete(key);
    await this.deps.store.delete(keys);
  }

  /**
   * The lease state machine: what each read-or-lease reply (the first one, or
   * a poll) leads to, for keys of one entity.
   *
   * | reply                          | next                                                    |
   * | ------------------------------ | ------------------------------------------------------- |
   * | a value, or ABSENT             | served (a hit when it is the first reply)               |
   * | null: the lease is granted     | fill: load, answer, fill under the lease                |
   * | our grace lease (granted, with | fill; if PostgreSQL is unreachable, serve the copy      |
   * | the grace copy)                | (stale) and put it back under the lease                 |
   * | the lease of a fill here       | join that fill                                          |
   * | another replica's lease        | wait: poll with read-or-lease, until leaseWaitMs; a     |
   * |                                | grace copy it carried is served only if our own load    |
   * |                                | then finds PostgreSQL unreachable                       |
   * | a value that does not decode   | load from PostgreSQL, no fill (the key keeps its TTL)   |
   *
   * With grace, a value past its fresh time never comes back as a value: the
   * store turns it into a grace lease for the reader (CacheStore.acquireLeases).
   */
  private step(slots: readonly Slot[], replies: readonly Reply[], lease: string): Step[] {
    // A grace lease of ours starts with this; without grace there is none.
    const held = this.graceMs > 0 ? `${lease}${GRACE_SEPARATOR}` : undefined;
    const filling = this.fill(
      slots.filter((_, i) => replies[i] === null || (held !== undefined && replies[i]!.startsWith(held))),
      lease,
      held === undefined ? undefined : replies.filter((r) => r === null || r.startsWith(held)),
    ).values;
    let filled = 0;
    return slots.map((slot, i): Step => {
      const reply = replies[i]!;
      if (reply === null) return { hit: false, value: filling[filled++]! };
      if (reply === ABSENT) return { hit: true, value: null };
      if (isLease(reply)) {
        if (held !== undefined && reply.startsWith(held)) return { hit: false, value: filling[filled++]! };
        const flight = this.flights.get(slot.key);
        return { hit: false, value: flight?.tag === reply ? flight.value : this.wait(slot, reply) };
      }
      try {
        return { hit: true, value: slot.entity.decode(reply) };
      } catch (err) {
        // Undecodable (a foreign writer, an old format): never serve it.
        this.cacheFailed("decode", err);
        return { hit: false, value: this.load([slot])[0]! };
      }
    });
  }

  /**
   * Loads leased rows. `values` resolve as soon as PostgreSQL has answered;
   * the fill lands in the background (`landed`, never rejects), so a miss
   * costs no extra wait for Redis. The lease keeps the fill honest either way.
   * `heldAs` (with grace) is each key's reply: null, or our grace lease.
   */
  private fill(
    slots: readonly Slot[],
    lease: string,
    heldAs?: readonly Reply[],
  ): { values: Promise<unknown>[]; landed: Promise<void> } {
    if (slots.length === 0) return { values: [], landed: Promise.resolve() };
    const rows = this.query(slots);
    // On a failed load, release the leases so other readers do not wait out their TTL.
    const landed = rows.then(
      (found) => this.land(slots, lease, found),
      () => this.land(slots, lease, undefined, heldAs),
    );
    const values = slots.map(({ entity, key, id }, i) => {
      const loaded = rows.then((found) => found.get(id) ?? null);
      const held = heldAs?.[i] ?? null;
      const value = held === null ? loaded : orGraceCopy(loaded, graceCopyOf(held), entity);
      // Tagged with what the key holds, which is what a reader that may join sees.
      this.track(key, { tag: held ?? lease, value }, landed);
      return value;
    });
    return { values, landed };
  }

  private async land(
    slots: readonly Slot[],
    lease: string,
    found: Map<string, unknown> | undefined,
    heldAs?: readonly Reply[],
  ): Promise<void> {
    // After the answer has been written: the caller should not wait for our bookkeeping.
    await new Promise((resolve) => setImmediate(resolve));
    if (heldAs !== undefined) {
      // The load failed: grace copies go back as they were, under the lease, so a write's DEL in between wins.
      const restores = slots.filter((_, i) => heldAs[i] !== null).map(({ key }) => ({ key, lease }));
      if (restores.length > 0) await this.tryCache("fill", () => this.deps.store.restoreGrace(restores));
      slots = slots.filter((_, i) => heldAs[i] === null);
    }
    const fills = slots.map(({ entity, id, key }) => {
      const value = found?.get(id);
      if (found === undefined) return { key, lease, value: "", ttlSeconds: 0 };
      if (value === undefined) return { key, lease, value: ABSENT, ttlSeconds: this.options.negativeTtlSeconds };
      const raw = entity.encode(value);
      if (Buffer.byteLength(raw) <= this.options.maxValueBytes) {
        return { key, lease, value: raw, ttlSeconds: entity.ttlSeconds + this.options.graceSeconds };
      }
      this.deps.metrics.cacheValuesTooLarge.inc({ cache_type: entity.type });
      return { key, lease, value: "", ttlSeconds: 0 };
    });
    if (fills.length === 0) return;
    const landed = await this.tryCache("fill", () => this.deps.store.fillLeased(fills));
    landed?.forEach((ok, i) => {
      if (!ok && fills[i]!.ttlSeconds > 0)
        this.deps.metrics.cacheFillsRejected.inc({ cache_type: slots[i]!.entity.type });
    });
  }

  /**
   * Another filler holds `theirs`: poll until it lands or goes, then step on;
   * past leaseWaitMs, load, falling back on the grace copy of the latest reply.
   */
  private wait(slot: Slot, theirs: string): Promise<unknown> {
    const value = inSpan("cache lease wait", async () => {
      let copy = this.graceMs > 0 ? graceCopyOf(theirs) : undefined;
      const deadline = Date.now() + this.options.leaseWaitMs;
      for (let delay = 2; Date.now() < deadline; delay = Math.min(delay * 2, 20)) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(delay, deadline - Date.now())));
        const lease = this.nextLease();
        const replies = await this.tryCache("poll", () =>
          this.deps.store.acquireLeases([slot.key], lease, this.options.leaseTtlMs, this.graceMs),
        );
        if (replies === undefined) break;
        const reply = replies[0] ?? null;
        // Still another filler's (this one or the next): keep waiting, unless that filler is here.
        if (
          reply !== null &&
          isLease(reply) &&
          !(this.graceMs > 0 && reply.startsWith(`${lease}${GRACE_SEPARATOR}`)) &&
          (reply === theirs || this.flights.get(slot.key)?.tag !== reply)
        ) {
          if (this.graceMs > 0) copy = graceCopyOf(reply);
          continue;
        }
        const [next] = this.step([slot], [reply], lease);
        return next!.value;
      }
      return orGraceCopy(this.load([slot])[0]!, copy, slot.entity);
    });
    this.track(slot.key, { tag: theirs, value }, value);
    return value;
  }

  /** A grace copy served: counted, and reported stale. */
  private served(slot: Slot, stale: Stale): Outcome<unknown> {
    this.deps.metrics.cacheStaleServed.inc({ cache_type: slot.entity.type });
    return { value: stale.value, status: "stale" };
  }

  /** Reads PostgreSQL without filling; concurrent readers of a key share one query. */
  private load(slots: readonly Slot[]): Promise<unknown>[] {
    const shared = slots.map((s) => this.flights.get(s.key));
    const fresh = slots.filter((_, i) => shared[i]?.tag !== NO_CACHE);
    const rows = fresh.length === 0 ? undefined : this.query(fresh);
    return slots.map(({ key, id }, i) => {
      if (shared[i]?.tag === NO_CACHE) return shared[i].value;
      const value = rows!.then((found) => found.get(id) ?? null);
      this.track(key, { tag: NO_CACHE, value }, value);
      return value;
    });
  }

  /** One SQL query for slots of one entity. */
  private query(slots: readonly Slot[]): Promise<Map<string, unknown>> {
    const { entity } = slots[0]!;
    this.deps.metrics.dbLoads.inc({ cache_type: entity.type });
    return entity.load(slots.map((s) => s.id));
  }

  /** Lets later readers of `key` join `flight` until `done` settles. */
  private track(key: string, flight: Flight, done: Promise<unknown>): void {
    this.flights.set(key, flight);
    const forget = () => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    };
    done.then(forget, forget);
  }

  private nextLease(): string {
    return `${this.leasePrefix}${++this.leaseCount}`;
  }

  /** Runs a cache call; undefined when the cache failed or is skipped (counted, and read from PostgreSQL). */
  private async tryCache<T>(operation: string, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (err) {
      this.deps.metrics.redisFallbacks.inc({ operation });
      this.cacheFailed(operation, err);
      return undefined;
    }
  }

  private cacheFailed(operation: string, err: unknown): void {
    if (this.deps.log === undefined) return;
    rateLimited(this.deps.log).warn(
      `cache unavailable: ${operation}`,
      { operation, err: errorSummary(err) },
      "cache unavailable; reading PostgreSQL",
    );
  }
}
