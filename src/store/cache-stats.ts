// What the metrics need to know about the cache server itself, beyond the
// reads and writes of the CacheStore seam.

export interface CacheStats {
  /**
   * The server's own hit rate, keyspace_hits / (keyspace_hits + keyspace_misses),
   * or undefined when it keeps none, has seen no lookups, or cannot be reached.
   */
  keyspaceHitRate(): Promise<number | undefined>;
  /** Approximate bytes held by the keys under each prefix, aligned with `prefixes`. */
  bytesByPrefix(prefixes: readonly string[]): Promise<number[]>;
}
