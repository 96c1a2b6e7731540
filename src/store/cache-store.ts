// The seam between the cache-aside logic and the cache server. Every method is
// one round trip and atomic per key, so it works unchanged on Redis Cluster
// (no multi-key scripts) and on the in-process store.

export interface CacheStore {
  /** Current raw values, null where a key is absent. */
  getMany(keys: readonly string[]): Promise<(string | null)[]>;

  /**
   * For each key that is absent, stores `lease` with a TTL of `ttlMs` and
   * yields null (the lease is granted). For a key that is present, yields
   * its current value and changes nothing.
   */
  acquireLeases(keys: readonly string[], lease: string, ttlMs: number): Promise<(string | null)[]>;

  /**
   * For each entry, replaces the key's value with `value` (TTL `ttlSeconds`)
   * only if the key still holds `lease` (or its refresh marker). With `ttlSeconds` 0 the lease is just
   * released. Yields whether each fill landed.
   */
  fillLeased(entries: readonly LeasedFill[]): Promise<boolean[]>;

  /** Values with their remaining TTL in milliseconds (-1 for none), for early refresh. */
  getManyWithTtl(keys: readonly string[]): Promise<{ value: string | null; ttlMs: number }[]>;

  /**
   * Starts an early refresh under `lease`: if the key still holds exactly
   * `current`, it becomes `refreshMarker(lease, current)` with its TTL kept,
   * so readers go on being served `current`. `fillLeased` with the same lease
   * then lands the new value; a delete voids the refresh like any lease.
   * True when the refresh is ours.
   */
  beginRefresh(key: string, current: string, lease: string): Promise<boolean>;

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

/** The cache did not answer, or not in time. Reads fall back to the database. */
export class CacheUnavailableError extends Error {
  constructor(cause: unknown) {
    super("cache unavailable", { cause });
    this.name = "CacheUnavailableError";
  }
}

export const REFRESH_PREFIX = "~refresh:";

/** A value under early refresh: the old value, still served, behind the refresher's lease. */
export function refreshMarker(lease: string, current: string): string {
  return `${REFRESH_PREFIX}${lease}|${current}`;
}
