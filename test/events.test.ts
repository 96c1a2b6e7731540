// Every write publishes the seed's JSON event on the seed's channel, after the
// cache has been invalidated.

import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testRedisUrl } from "./support/servers.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let svc: TestService;
let subscriber: Redis;
const received: { channel: string; message: Record<string, unknown>; keyExisted: number }[] = [];

beforeAll(async () => {
  svc = await startTestService({ label: "events" });
  subscriber = new Redis(testRedisUrl);
  const checker = new Redis(testRedisUrl);
  subscriber.on("message", (channel: string, message: string) => {
    const parsed = JSON.parse(message) as Record<string, unknown>;
    // Record whether the cache entry still existed when the event arrived.
    checker
      .exists(svc.keys.profile(String(parsed.user_id)))
      .then((keyExisted) => received.push({ channel, message: parsed, keyExisted }))
      .catch(() => received.push({ channel, message: parsed, keyExisted: -1 }));
  });
  await subscriber.subscribe(
    `${svc.keyPrefix}profile:updated`,
    `${svc.keyPrefix}profile:deleted`,
    `${svc.keyPrefix}preferences:updated`,
  );
});
afterAll(async () => {
  subscriber?.disconnect();
  await svc?.close();
});

describe("published events", () => {
  it("uses the seed's channels and payloads", async () => {
    const id = randomUserId();
    const token = await mintToken(id);
    await svc.grpc.unary("updateProfile", { profile: { firstName: "A" } }, token);
    await svc.grpc.unary("getProfile", {}, token);
    await svc.grpc.unary(
      "updateProfile",
      { profile: { firstName: "B", bio: "x" }, updateMask: { paths: ["first_name", "bio"] } },
      token,
    );
    await svc.grpc.unary(
      "updatePreferences",
      { preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
      token,
    );
    await svc.grpc.unary("deleteProfile", {}, token);

    await expect.poll(() => received.filter((r) => r.message.user_id === id).length).toBe(4);
    const mine = received.filter((r) => r.message.user_id === id);
    expect(mine.map((r) => r.channel)).toEqual([
      `${svc.keyPrefix}profile:updated`,
      `${svc.keyPrefix}profile:updated`,
      `${svc.keyPrefix}preferences:updated`,
      `${svc.keyPrefix}profile:deleted`,
    ]);
    expect(mine[0]!.message.updated_fields).toEqual(["first_name", "last_name", "bio", "avatar_url", "phone"]);
    const eventId = expect.stringMatching(/^\d+$/);
    expect(mine[1]!.message).toEqual({
      user_id: id,
      updated_fields: ["first_name", "bio"],
      timestamp: expect.any(String),
      event_id: eventId,
    });
    expect(mine[2]!.message).toEqual({
      user_id: id,
      updated_fields: ["theme"],
      timestamp: expect.any(String),
      event_id: eventId,
    });
    expect(mine[3]!.message).toEqual({ user_id: id, timestamp: expect.any(String), event_id: eventId });
    expect(new Set(mine.map((m) => m.message.event_id)).size).toBe(4);
    expect(Number.isNaN(Date.parse(String(mine[3]!.message.timestamp)))).toBe(false);
    // The profile was cached before the second update; by the time its event arrived the key was gone.
    expect(mine[1]!.keyExisted).toBe(0);
  });
});
