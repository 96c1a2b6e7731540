// Redis stops while writes go on, then comes back: gRPC watchers and direct
// Redis subscribers still receive every event (subscribers at least once).

import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrivateRedis } from "./support/private-redis.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

let redis: PrivateRedis;
let a: TestService;
let b: TestService;

const env = { EVENT_POLL_INTERVAL_MS: "200", EVENT_RELAY_INTERVAL_MS: "200", EVENT_RELAY_GRACE_MS: "2500" };

beforeAll(async () => {
  redis = await PrivateRedis.start();
  a = await startTestService({ label: "watch_outage", redisUrl: redis.url, env });
  b = await startTestService({
    label: "watch_outage_b",
    redisUrl: redis.url,
    env,
    database: a.database,
    keyPrefix: a.keyPrefix,
  });
});
afterAll(async () => {
  await b?.close();
  await a?.close();
  await redis?.stop();
});

describe("a Redis outage during writes", () => {
  it("loses no event for watchers or for direct Redis subscribers", async () => {
    const user = randomUserId();
    const writer = await mintToken(user);
    const watcher = new WatchStream(
      b.grpc.stream({ userIds: [user] }, await mintToken("indexer", { scope: "profiles:watch" })),
    );
    const subscriber = new Redis(redis.url, { retryStrategy: () => 50 });
    subscriber.on("error", () => {});
    // Deduped by event_id, as subscribers are told to: at least once allows duplicates, never losses.
    const direct = new Map<string, Record<string, unknown>>();
    subscriber.on("message", (_channel: string, message: string) => {
      const parsed = JSON.parse(message) as Record<string, unknown>;
      if (parsed.user_id === user) direct.set(String(parsed.event_id), parsed);
    });
    await subscriber.subscribe(`${a.keyPrefix}profile:updated`, `${a.keyPrefix}preferences:updated`);
    try {
      await watcher.until((s) => s.received.length > 0);
      await a.grpc.unary("updateProfile", { profile: { firstName: "before" } }, writer);
      await watcher.until((s) => s.events.length === 1);

      await redis.stop();
      for (let i = 0; i < 3; i++) {
        await a.grpc.unary(
          "updateProfile",
          { profile: { firstName: `during-${i}` }, updateMask: { paths: ["first_name"] } },
          writer,
        );
      }
      await a.grpc.unary(
        "updatePreferences",
        { preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
        writer,
      );
      // Watchers do not depend on Redis: the hub polls the outbox.
      await watcher.until((s) => s.events.length === 5, 10_000, "events written while Redis was down");

      await redis.start();
      await a.grpc.unary(
        "updateProfile",
        { profile: { firstName: "after" }, updateMask: { paths: ["first_name"] } },
        writer,
      );
      await watcher.until((s) => s.events.length === 6, 10_000, "the event after the restart");

      // The relay publishes what the writers could not, once Redis is back.
      const all = watcher.events.map((e) => e.eventId);
      // "before" and "after" were published by their writers; the four outage events by the relay.
      await expect.poll(() => all.filter((id) => direct.has(id)).length, { timeout: 15_000 }).toBe(6);
      expect(new Set(all).size).toBe(6);
      // Every channel's count on both instances: the outage events span two channels.
      const relayedTotal = async () => {
        let total = 0;
        for (const svc of [a, b]) for (const v of (await svc.app.metrics.eventsRelayed.get()).values) total += v.value;
        return total;
      };
      await expect.poll(relayedTotal, { timeout: 15_000 }).toBeGreaterThanOrEqual(4);
    } finally {
      watcher.cancel();
      subscriber.disconnect();
    }
  });
});
