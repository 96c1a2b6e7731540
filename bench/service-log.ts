// The service logs one line per RPC (at the default level, info) with its
// code and cache status. Tallying the lines a run produced checks every reply,
// which h2load cannot see, and gives the hit ratio without a metrics scrape.

import { closeSync, openSync, readSync } from "node:fs";

export interface LogTally {
  rpcs: number;
  /** By code name: OK, Unauthenticated, ... */
  codes: Record<string, number>;
  /** By cache status of read RPCs: hit, miss, bypass. */
  cache: Record<string, number>;
}

const CODE = /"code":"([A-Za-z]+)"/;
const CACHE = /"cache":"([a-z]+)"/;

export function tallyLog(file: string, from: number, to: number): LogTally {
  const tally: LogTally = { rpcs: 0, codes: {}, cache: {} };
  const count = (line: string) => {
    if (!line.includes('"msg":"rpc')) return;
    tally.rpcs++;
    const code = CODE.exec(line)?.[1] ?? "?";
    tally.codes[code] = (tally.codes[code] ?? 0) + 1;
    const cache = CACHE.exec(line)?.[1];
    if (cache !== undefined && cache !== "none") tally.cache[cache] = (tally.cache[cache] ?? 0) + 1;
  };
  const fd = openSync(file, "r");
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    let rest = "";
    for (let pos = from; pos < to;) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, to - pos), pos);
      if (n === 0) break;
      pos += n;
      const lines = (rest + chunk.toString("utf8", 0, n)).split("\n");
      rest = lines.pop() ?? "";
      lines.forEach(count);
    }
    count(rest);
  } finally {
    closeSync(fd);
  }
  return tally;
}

/** Hits over cache lookups, or undefined when there were none. */
export function hitRatio(t: LogTally): number | undefined {
  const lookups = Object.values(t.cache).reduce((a, b) => a + b, 0);
  return lookups === 0 ? undefined : (t.cache.hit ?? 0) / lookups;
}

/**
 * Reads the service answered from PostgreSQL because a Redis call failed or
 * timed out (status "bypass"). Not a bench failure: it is the service's own
 * behavior under load, so it is reported with the figures it affects.
 */
export function bypassNote(t: LogTally): string[] {
  const bypass = t.cache.bypass ?? 0;
  return bypass === 0 ? [] : [`${bypass} reads bypassed the cache to PostgreSQL (Redis timeouts)`];
}
