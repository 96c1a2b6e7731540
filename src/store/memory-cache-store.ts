// The embedded default's cache: an in-process LRU with per-entry TTLs and the
// same lease semantics as RedisCacheStore. Every method runs synchronously
// inside one call, so each is atomic, as the Lua scripts are on Redis.

import { LRUCache } from "lru-cache";
import { graceLease, isLease, parseGraceLease, type CacheStore, type LeasedFill } from "./cache-store.js";
import type { CacheStats } from "../metrics/cache-stats.js";

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

  async acquireLeases(keys: readonly string[], lease: string, ttlMs: number, graceMs = 0): Promise<(string | null)[]> {
    return keys.map((key) => {
      const current = this.entries.get(key);
      if (current === undefined) {
        this.entries.set(key, lease, { ttl: ttlMs });
        return null;
      }
      if (graceMs === 0) return current;
      const copy = this.graceCopy(key, current, graceMs);
      if (copy === undefined) return current;
      const taken = graceLease(lease, Date.now() + ttlMs, copy);
      this.entries.set(key, taken, { noUpdateTTL: true });
      return taken;
    });
  }

  /** What a reader with `graceMs` of grace may lease `current` for: a value past its fresh time, or an expired grace lease's copy. */
  private graceCopy(key: string, current: string, graceMs: number): string | undefined {
    if (isLease(current)) {
      const held = parseGraceLease(current);
      return held !== undefined && held.leaseUntilMs <= Date.now() ? held.copy : undefined;
    }
    if (current.startsWith("~")) return undefined;
    return this.entries.getRemainingTTL(key) <= graceMs ? current : undefined;
  }

  async fillLeased(entries: readonly LeasedFill[]): Promise<boolean[]> {
    return entries.map(({ key, lease, value, ttlSeconds }) => {
      const current = this.entries.get(key);
      if (current !== lease && (current === undefined || parseGraceLease(current)?.lease !== lease)) return false;
      if (ttlSeconds === 0) this.entries.delete(key);
      // Like any entry, it may be evicted at once (here: when larger than maxBytes).
      else this.entries.set(key, value, { ttl: ttlSeconds * 1000 });
      return true;
    });
  }

  async restoreGrace(entries: readonly { key: string; lease: string }[]): Promise<boolean[]> {
    return entries.map(({ key, lease }) => {
      const current = this.entries.get(key);
      const held = current === undefined ? undefined : parseGraceLease(current);
      if (held?.lease !== lease) return false;
      this.entries.set(key, held.copy, { noUpdateTTL: true });
      return true;
    });
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
