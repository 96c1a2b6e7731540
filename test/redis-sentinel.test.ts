// The service behind Redis Sentinel: a primary, a replica and one Sentinel,
// all with passwords. After the primary is SIGKILLed and the Sentinel has
// promoted the replica, the service caches and publishes again, and its own
// subscriber follows the failover too.

import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrivateRedisSentinel } from "./support/private-redis-sentinel.js";
import { exercise, READER_ENV, RecoveryProbe, followsWrites, total } from "./support/private-redis-exercise.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let group: PrivateRedisSentinel;
let inspect: Redis;
let token: string;
let writer: TestService;
let reader: TestService;

beforeAll(async () => {
  group = await PrivateRedisSentinel.start({ password: "data-secret", sentinelPassword: "sentinel-secret" });
  inspect = group.client();
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
  const env = {
    REDIS_SENTINELS: group.sentinels,
    REDIS_SENTINEL_NAME: group.name,
    REDIS_PASSWORD: "data-secret",
    REDIS_SENTINEL_PASSWORD: "sentinel-secret",
    REDIS_URL: "",
    // Failed publishes stay failed during the test: the relay would retry them after this.
    EVENT_RELAY_GRACE_MS: "60000",
  };
  writer = await startTestService({ label: "sentinel", env });
  reader = await startTestService({
    label: "sentinel_b",
    env: { ...env, ...READER_ENV },
    database: writer.database,
    keyPrefix: writer.keyPrefix,
  });
});
afterAll(async () => {
  inspect?.disconnect();
  await reader?.close();
  await writer?.close();
  await group?.stop();
});

describe("behind Redis Sentinel", () => {
  it("caches and publishes through the primary the Sentinel names", async () => {
    expect(await exercise(writer, inspect, token, 8)).toEqual({ cached: 8, hitFraction: 1, events: 8 });
    await followsWrites(writer, reader, token);
  });

  it("recovers caching, invalidation and publishing after the primary is SIGKILLed and the replica promoted", async () => {
    const probe = new RecoveryProbe(writer, token, (key) => inspect.get(key));
    await new Promise((r) => setTimeout(r, 300));
    const failover = await group.killPrimaryAndAwaitPromotion();
    const recovery = await probe.recovered(failover.killedAt, 15_000);
    const promotionMs = Math.round(failover.promotedAt - failover.killedAt);
    console.log(`Sentinel failover: promotion after ${promotionMs} ms; ${JSON.stringify(recovery)}`);
    expect(recovery.cachingMs).toBeLessThan(promotionMs + 5000);
    expect(recovery.invalidatingMs).toBeLessThan(promotionMs + 5000);

    // The other instance's subscriber followed the failover too.
    await followsWrites(writer, reader, token);
    expect(await exercise(writer, inspect, token, 4)).toEqual({ cached: 4, hitFraction: 1, events: 4 });
    expect(await total(writer, "redisFallbacks")).toBeGreaterThan(0);
  });
});
