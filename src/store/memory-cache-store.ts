// The embedded default's cache: an in-process LRU with per-entry TTLs and the
// same lease semantics as RedisCacheStore. Every method runs synchronously
// inside one call, so each is atomic, as the Lua scripts are on Redis.

import { LRUCache } from "lru-cache";
import { refreshMarker, type CacheStore, type LeasedFill } from "./cache-store.js";
import type { CacheStats } from "./cache-stats.js";

export interface MemoryCacheStoreOptions {
  /** Upper bound on the UTF-8 bytes of keys plus values; least recently used entries go first. */
  maxBytes: number;
}

export class MemoryCacheStore implements CacheStore, CacheStats {
  private readonly entries: LRUCache<string, string>;

  constructor(options: MemoryCacheStoreOptions) {
    this.entries = new LRUCache<string, string>({
      maxSize: options.maxBytes,
      sizeCalculation: entrySize,
    });
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    return keys.map((k) => this.entries.get(k) ?? null);
  }

  async acquireLeases(keys: readonly string[], lease: string, ttlMs: number): Promise<(string | null)[]> {
    return keys.map((key) => {
      const current = this.entries.get(key);
      if (current !== undefined) return current;
      this.entries.set(key, lease, { ttl: ttlMs });
      return null;
    });
  }

  async fillLeased(entries: readonly LeasedFill[]): Promise<boolean[]> {
    return entries.map(({ key, lease, value, ttlSeconds }) => {
      const current = this.entries.get(key);
      if (current !== lease && !current?.startsWith(refreshMarker(lease, ""))) return false;
      if (ttlSeconds === 0) this.entries.delete(key);
      // Like any entry, it may be evicted at once (here: when larger than maxBytes).
      else this.entries.set(key, value, { ttl: ttlSeconds * 1000 });
      return true;
    });
  }

  async getManyWithTtl(keys: readonly string[]): Promise<{ value: string | null; ttlMs: number }[]> {
    return keys.map((key) => {
      const value = this.entries.get(key);
      if (value === undefined) return { value: null, ttlMs: -2 };
      const ttl = this.entries.getRemainingTTL(key);
      return { value, ttlMs: Number.isFinite(ttl) ? Math.max(0, Math.round(ttl)) : -1 };
    });
  }

  async beginRefresh(key: string, current: string, lease: string): Promise<boolean> {
    if (this.entries.get(key) !== current) return false;
    const ttl = this.entries.getRemainingTTL(key);
    this.entries.set(key, refreshMarker(lease, current), Number.isFinite(ttl) && ttl > 0 ? { ttl } : {});
    return true;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.entries.delete(key);
  }

  async close(): Promise<void> {
    this.entries.clear();
  }

  /** Bytes of live entries; expired ones are dropped first so they do not count. */
  get sizeBytes(): number {
    this.entries.purgeStale();
    return this.entries.calculatedSize;
  }

  async keyspaceHitRate(): Promise<number | undefined> {
    return undefined;
  }

  // One pass over the entries, whose number maxBytes bounds.
  async bytesByPrefix(prefixes: readonly string[]): Promise<number[]> {
    this.entries.purgeStale();
    const totals = prefixes.map(() => 0);
    for (const [key, value] of this.entries.entries()) {
      const i = prefixes.findIndex((p) => key.startsWith(p));
      if (i >= 0) totals[i]! += entrySize(value, key);
    }
    return totals;
  }
}

function entrySize(value: string, key: string): number {
  return Math.max(1, Buffer.byteLength(key) + Buffer.byteLength(value));
}
