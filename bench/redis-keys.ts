// The bench's keys all live under its own prefix; this removes them (between
// scenarios that need a cold cache, and at the end) without touching anyone
// else's keys on the shared Redis.

import type { Redis } from "ioredis";

export async function deleteByPrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${globEscape(prefix)}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== "0");
  return deleted;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}
