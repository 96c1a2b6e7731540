// The seam between the cache-aside logic and the cache server. Every method is
// one round trip and atomic per key, so it works unchanged on Redis Cluster
// (no multi-key scripts) and on the in-process store.

export interface CacheStore {
  /** Current raw values, null where a key is absent. */
  getMany(keys: readonly string[]): Promise<(string | null)[]>;

  /**
   * Read-or-lease: for each key that is absent, stores `lease` with a TTL of
   * `ttlMs` and yields null (the lease is granted). For a key that is
   * present, yields its current value and changes nothing.
   *
   * With `graceMs` > 0 (values are then filled with their TTL plus the grace),
   * a value with at most `graceMs` left is past its fresh time: it is
   * replaced by a grace lease of `lease` carrying it (`graceLease`), keeping
   * the key's TTL, and that is yielded: the lease is granted, with the grace
   * copy. A grace lease whose lease time is up is taken over the same way.
   * The store's clock decides both, so every replica agrees.
   */
  acquireLeases(keys: readonly string[], lease: string, ttlMs: number, graceMs?: number): Promise<(string | null)[]>;

  /**
   * For each entry, replaces the key's value with `value` (TTL `ttlSeconds`)
   * only if the key still holds `lease`, alone or as a grace lease. With
   * `ttlSeconds` 0 the lease is just released. Yields whether each fill landed.
   */
  fillLeased(entries: readonly LeasedFill[]): Promise<boolean[]>;

  /**
   * For each entry whose key still holds a grace lease of `lease`, puts the
   * grace copy back as the key's value, keeping the key's TTL (what is left
   * of the grace). Yields whether each landed; a write's delete in between wins.
   */
  restoreGrace(entries: readonly { key: string; lease: string }[]): Promise<boolean[]>;

  /** Deletes the keys, voiding any lease on them. */
  delete(keys: readonly string[]): Promise<void>;

  close(): Promise<void>;
}

export interface LeasedFill {
  key: string;
  lease: string;
  value: string;
  ttlSeconds: number;
}

/** The cache did not answer, or not in time, or is skipped. Reads fall back to the database. */
export class CacheUnavailableError extends Error {
  constructor(cause: unknown) {
    super("cache unavailable", { cause });
    this.name = "CacheUnavailableError";
  }
}

// Values are the rows' JSON objects; anything else is one of these markers,
// which every store and the cache-aside logic must agree on. The stores'
// scripts compare a lease only with the exact string they are given.

/** A row known not to exist (negative caching). */
export const ABSENT = "~absent";
/** A filler's claim on an absent key: `~lease:<replica>:<n>`. */
export const LEASE_PREFIX = "~lease:";

export function isLease(raw: string): boolean {
  return raw.startsWith(LEASE_PREFIX);
}

// A grace lease: `<lease>|<lease time, store clock ms>|<grace copy>`. It is a
// lease to every reader (it starts with LEASE_PREFIX); it lives in the key it
// replaced, so a write's delete voids lease and copy at once, in one slot.
// Lease names never contain GRACE_SEPARATOR.
export const GRACE_SEPARATOR = "|";

export function graceLease(lease: string, leaseUntilMs: number, copy: string): string {
  return `${lease}${GRACE_SEPARATOR}${leaseUntilMs}${GRACE_SEPARATOR}${copy}`;
}

/** The parts of a grace lease; undefined for anything else (a plain lease, a value, a marker). */
export function parseGraceLease(raw: string): { lease: string; leaseUntilMs: number; copy: string } | undefined {
  if (!isLease(raw)) return undefined;
  const a = raw.indexOf(GRACE_SEPARATOR);
  const b = a < 0 ? -1 : raw.indexOf(GRACE_SEPARATOR, a + 1);
  if (b < 0) return undefined;
  return { lease: raw.slice(0, a), leaseUntilMs: Number(raw.slice(a + 1, b)), copy: raw.slice(b + 1) };
}
