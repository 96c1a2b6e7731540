import type { CacheStore, LeasedFill } from "../../src/store/cache-store.js";

/** A real cache store whose calls are also recorded, so tests can count round trips. */
export class CountingCacheStore implements CacheStore {
  readonly calls: { method: string; keys: readonly string[] }[] = [];

  constructor(private readonly inner: CacheStore) {}

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  reset(): void {
    this.calls.length = 0;
  }

  getMany(keys: readonly string[]) {
    this.calls.push({ method: "getMany", keys });
    return this.inner.getMany(keys);
  }
  acquireLeases(keys: readonly string[], lease: string, ttlMs: number, graceMs?: number) {
    this.calls.push({ method: "acquireLeases", keys });
    return this.inner.acquireLeases(keys, lease, ttlMs, graceMs);
  }
  fillLeased(entries: readonly LeasedFill[]) {
    this.calls.push({ method: "fillLeased", keys: entries.map((e) => e.key) });
    return this.inner.fillLeased(entries);
  }
  restoreGrace(entries: readonly { key: string; lease: string }[]) {
    this.calls.push({ method: "restoreGrace", keys: entries.map((e) => e.key) });
    return this.inner.restoreGrace(entries);
  }
  delete(keys: readonly string[]) {
    this.calls.push({ method: "delete", keys });
    return this.inner.delete(keys);
  }
  close() {
    return this.inner.close();
  }
}
