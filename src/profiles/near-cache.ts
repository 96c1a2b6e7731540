// The optional in-process near cache (L1) in front of Redis, off by default.
//
// It is kept honest by the replica's change feed: every change event drops the
// user's entries, and losing the feed (a Redis disconnect) flushes everything
// and keeps it off until the feed is back. An entry also never outlives
// `maxAgeMs`, which bounds staleness when an event is delayed or lost.

import { LRUCache } from "lru-cache";
import type { ChangeListener, ChangeNotice } from "../events/change-feed.js";
import type { CacheKeys } from "./cache-keys.js";

export interface NearCacheOptions {
  maxEntries: number;
  maxAgeMs: number;
}

// lru-cache cannot store undefined; a found-nothing answer is worth caching too.
const ABSENT = Symbol("absent");

export class NearCache implements ChangeListener {
  private readonly entries: LRUCache<string, object | typeof ABSENT>;
  // When each key was last invalidated, so a read that started before that
  // cannot put back what it saw.
  private readonly invalidatedAt: LRUCache<string, number>;
  private generation = 0;
  private flushedAt = 0;
  private live = false;

  constructor(
    private readonly keys: CacheKeys,
    options: NearCacheOptions,
  ) {
    this.entries = new LRUCache({ max: options.maxEntries, ttl: options.maxAgeMs, ttlAutopurge: false });
    this.invalidatedAt = new LRUCache({ max: options.maxEntries, ttl: options.maxAgeMs * 2 });
  }

  /** A token to pass to `set`: reads started now. */
  begin(): number {
    return this.generation;
  }

  /** The value, null for a known-absent row, or undefined when not held. */
  get(key: string): unknown {
    const v = this.entries.get(key);
    return v === ABSENT ? null : v;
  }

  set(key: string, value: unknown, startedAt: number): void {
    if (!this.live || startedAt < this.flushedAt) return;
    const invalidated = this.invalidatedAt.get(key);
    if (invalidated !== undefined && invalidated > startedAt) return;
    this.entries.set(key, value === null ? ABSENT : (value as object));
  }

  invalidate(keys: readonly string[]): void {
    const now = ++this.generation;
    for (const key of keys) {
      this.entries.delete(key);
      this.invalidatedAt.set(key, now);
    }
  }

  onChange(notice: ChangeNotice): void {
    if (notice.userId === undefined) {
      this.flush();
      return;
    }
    this.invalidate([this.keys.profile(notice.userId), this.keys.preferences(notice.userId)]);
  }

  onStatus(live: boolean): void {
    this.flush();
    this.live = live;
  }

  get size(): number {
    return this.entries.size;
  }

  private flush(): void {
    this.generation++;
    this.entries.clear();
    this.invalidatedAt.clear();
    // Everything older than this flush is suspect, whatever its key.
    this.flushedAt = this.generation;
  }

}
