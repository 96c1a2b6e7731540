// What the metrics need to know about the cache server itself, beyond the
// reads and writes of the CacheStore seam. The metrics own this port (the
// stores implement it), so metrics/ imports no adapter.

export interface CacheStats {
  /**
   * The server's own hit rate, keyspace_hits / (keyspace_hits + keyspace_misses),
   * or undefined when it keeps none, has seen no lookups, or cannot be reached.
   */
  keyspaceHitRate(): Promise<number | undefined>;
  /** Approximate bytes held by the keys under each prefix, aligned with `prefixes`. */
  bytesByPrefix(prefixes: readonly string[]): Promise<number[]>;
}

/**
 * The bounds of one size estimate on Redis: keys SCAN may visit per node, and
 * keys per prefix whose MEMORY USAGE is read. Here because cache_size_bytes'
 * help text states them; RedisCacheStats samples within them by default.
 */
export const DEFAULT_SCAN_BUDGET = 1000;
export const DEFAULT_SAMPLE_SIZE = 100;
