// The service logs one line per RPC (at the default level, info) with its
// grpc code and cache status. Tallying the lines a scenario produced checks
// every response's grpc-status, which h2load cannot see, and gives the hit
// ratio without a metrics endpoint.

import { openSync, readSync, closeSync } from "node:fs";

export interface LogTally {
  rpcs: number;
  /** By grpc code name: OK, Unauthenticated, ... */
  codes: Record<string, number>;
  /** By cache status of read RPCs: hit, miss, bypass. */
  cache: Record<string, number>;
  /** "cache unavailable; reading PostgreSQL" warnings, by operation (get, lease, fill, poll). */
  cacheUnavailable: Record<string, number>;
  /**
   * Misses on a key already read earlier in the same range: the key expired
   * (or a write invalidated it) in between. Early refresh exists to remove the first kind.
   */
  repeatMisses: number;
  /** The same, counted only for the keys in `hot` (the most popular ones). */
  repeatMissesHot: number;
}

export function tallyLog(file: string, from: number, to: number, hot: ReadonlySet<string> = new Set()): LogTally {
  const tally: LogTally = { rpcs: 0, codes: {}, cache: {}, cacheUnavailable: {}, repeatMisses: 0, repeatMissesHot: 0 };
  const seen = new Set<string>();
  const fd = openSync(file, "r");
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    let rest = "";
    for (let pos = from; pos < to; ) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, to - pos), pos);
      if (n === 0) break;
      pos += n;
      const lines = (rest + chunk.toString("utf8", 0, n)).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) count(line, tally, seen, hot);
    }
    count(rest, tally, seen, hot);
  } finally {
    closeSync(fd);
  }
  return tally;
}

const CODE = /"code":"([A-Za-z]+)"/;
const CACHE = /"cache":"([a-z]+)"/;

const OPERATION = /"operation":"([a-z]+)"/;
const READ = '"method":"profile.v1.ProfileService/GetProfile"';
const USER = /"user_id":"([0-9a-f-]+)"/;

function count(line: string, tally: LogTally, seen: Set<string>, hot: ReadonlySet<string>): void {
  if (line.includes('"msg":"cache unavailable')) {
    const op = OPERATION.exec(line)?.[1] ?? "?";
    tally.cacheUnavailable[op] = (tally.cacheUnavailable[op] ?? 0) + 1;
    return;
  }
  if (!line.includes('"msg":"rpc')) return;
  tally.rpcs++;
  const code = CODE.exec(line)?.[1] ?? "?";
  tally.codes[code] = (tally.codes[code] ?? 0) + 1;
  const cache = CACHE.exec(line)?.[1];
  if (cache !== undefined && cache !== "none") tally.cache[cache] = (tally.cache[cache] ?? 0) + 1;
  if (line.includes(READ)) {
    const user = USER.exec(line)?.[1];
    if (user === undefined) return;
    if (cache === "miss" && seen.has(user)) {
      tally.repeatMisses++;
      if (hot.has(user)) tally.repeatMissesHot++;
    }
    seen.add(user);
  }
}

/**
 * Reads the service answered from PostgreSQL because a Redis call failed or
 * timed out (status "bypass"). Not a bench failure: it is the service's own
 * behavior under load, so it is reported with the figures it affects.
 */
export function bypassNote(t: LogTally): string[] {
  const bypass = t.cache.bypass ?? 0;
  if (bypass === 0) return [];
  const reads = Object.values(t.cache).reduce((a, b) => a + b, 0);
  return [
    `${bypass} of ${reads} reads bypassed the cache to PostgreSQL (Redis failures logged: ${JSON.stringify(t.cacheUnavailable)})`,
  ];
}

/** Hits over cache lookups, or undefined when there were none. */
export function hitRatio(t: LogTally): number | undefined {
  const lookups = (t.cache.hit ?? 0) + (t.cache.miss ?? 0) + (t.cache.bypass ?? 0);
  return lookups === 0 ? undefined : (t.cache.hit ?? 0) / lookups;
}
