// The first Redis timeout of a process's life is as short as any other. The
// timeout stretches by the event loop's lag, and the lag monitor starts on
// first use: it must not count the time before it started (the process's
// uptime) as lag, or the first read against a frozen Redis after a quiet
// start hangs for twice the uptime instead of REDIS_TIMEOUT_MS.
//
// This file has its own process (vitest isolates files), so nothing has
// timed out in it before.

import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheUnavailableError } from "../src/store/cache-store.js";
import { FailurePolicy, GuardedCacheStore } from "../src/store/failure-policy.js";
import { RedisCacheStore } from "../src/store/redis-cache-store.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { PrivateRedis } from "./support/private-redis.js";

let redis: PrivateRedis;
beforeAll(async () => {
  redis = await PrivateRedis.start();
});
afterAll(async () => {
  redis?.resume();
  await redis?.stop();
});

describe("the first Redis timeout after a quiet start", () => {
  it("fails the call after REDIS_TIMEOUT_MS, not after the process's uptime", async () => {
    const client = createRedisClient({ url: redis.url, cluster: false });
    try {
      expect(await waitUntilReady(client, 5000)).toBe(true);
      const store = new GuardedCacheStore(new RedisCacheStore(client), new FailurePolicy({ timeoutMs: 100 }));
      expect(await store.getMany(["first-timeout"])).toEqual([null]);
      // A quiet process: served from Redis for a while, no timeout yet.
      await sleep(2000);
      redis.pause();
      const started = performance.now();
      await expect(store.getMany(["first-timeout"])).rejects.toBeInstanceOf(CacheUnavailableError);
      const ms = performance.now() - started;
      // 100 ms plus slack for a loaded machine; twice the 2 s of quiet would be 4 s.
      expect(ms).toBeLessThan(1500);
    } finally {
      redis.resume();
      client.disconnect();
    }
  });
});
