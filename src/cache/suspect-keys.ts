// Cache keys this replica knows may hold a value older than PostgreSQL: a
// write committed here and its DEL failed. Until a DEL sent after that lands,
// reads of those keys go to PostgreSQL instead of the cache (see CacheAside).
//
// Bounded: beyond `maxKeys`, every key is suspect until the outbox says every
// event through the newest failed one has been invalidated, by any replica.

/**
 * Failed invalidations a replica tracks one by one (suspect keys, events held
 * for retry): about a megabyte. Beyond that, all its reads bypass the cache
 * until the outbox has caught up.
 */
export const MAX_TRACKED_FAILURES = 10_000;

export class SuspectKeys {
  // Key → when it became suspect (a sequence number) and the event that made it so.
  private readonly keys = new Map<string, { seq: number; eventId: bigint }>();
  private seq = 0;
  private allThrough: bigint | undefined;

  constructor(private readonly maxKeys = MAX_TRACKED_FAILURES) {}

  /** The DEL of `keys` for event `eventId` (committed) failed. */
  add(keys: readonly string[], eventId: string): void {
    const id = BigInt(eventId);
    if (this.allThrough === undefined && this.keys.size + keys.length <= this.maxKeys) {
      for (const key of keys) this.keys.set(key, { seq: ++this.seq, eventId: id });
    } else {
      this.coverAll(id);
    }
  }

  /** Every key is suspect until every event through `eventId` is invalidated (see `invalidatedThrough`). */
  coverAll(eventId: bigint | string): void {
    const id = BigInt(eventId);
    if (this.allThrough === undefined || id > this.allThrough) this.allThrough = id;
  }

  has(key: string): boolean {
    return this.allThrough !== undefined || this.keys.has(key);
  }

  get empty(): boolean {
    return this.allThrough === undefined && this.keys.size === 0;
  }

  /** Take this just before sending a DEL, and hand it to `deleted` once the DEL has landed. */
  beforeDelete(): number {
    return this.seq;
  }

  /** A DEL of `keys` sent after `token` landed: what was suspect when it was sent no longer is. */
  deleted(keys: readonly string[], token: number): void {
    for (const key of keys) {
      const entry = this.keys.get(key);
      if (entry !== undefined && entry.seq <= token) this.keys.delete(key);
    }
  }

  /**
   * Event `eventId`, which touches `keys`, has been invalidated by another
   * replica, after it committed. A key suspect because of it, or of an
   * earlier event (a user's events get their ids in commit order), is sound.
   */
  eventDone(keys: readonly string[], eventId: string): void {
    const id = BigInt(eventId);
    for (const key of keys) {
      const entry = this.keys.get(key);
      if (entry !== undefined && entry.eventId <= id) this.keys.delete(key);
    }
  }

  /** The event id through which the outbox must be invalidated before every key is trusted again. */
  get coveredThrough(): bigint | undefined {
    return this.allThrough;
  }

  /**
   * Every event through `eventId` has been invalidated (by some replica, after
   * it committed), so keys made suspect by those events are sound again.
   */
  invalidatedThrough(eventId: bigint): void {
    if (this.allThrough !== undefined && eventId >= this.allThrough) this.allThrough = undefined;
    for (const [key, entry] of this.keys) if (entry.eventId <= eventId) this.keys.delete(key);
  }
}
