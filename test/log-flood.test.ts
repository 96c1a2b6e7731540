// A Redis outage fails every cache call, invalidation and publish. The log
// must stay readable: one line per kind of failure per interval, then one
// that says how many like it were left out, so nothing goes uncounted.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The README's Logs bullet: one line per kind of failure per interval (10 s).
import { REPEAT_INTERVAL_MS } from "../src/log/rate-limited.js";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { grpcProfileClient } from "./support/grpc-client.js";
import { PrivateRedis } from "./support/private-redis.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

const WRITES = 150;
const READS = 150;

let database: TestDatabase;
let redis: PrivateRedis;
let service: ChildService;

beforeAll(async () => {
  database = await createTestDatabase("log_flood");
  redis = await PrivateRedis.start();
  service = await ChildService.start(
    await serviceEnv({ databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("log_flood"), redisUrl: redis.url }),
  );
});
afterAll(async () => {
  await service?.stop("SIGKILL");
  await redis?.stop();
  await database?.drop();
});

const FAILURES = [
  "cache unavailable; reading PostgreSQL",
  "cache invalidation failed",
  "event publish failed; the relay will retry",
];

describe("a burst of calls during a Redis outage", () => {
  it(
    "logs each kind of failure once per interval, then how many were suppressed",
    async () => {
      const client = grpcProfileClient(`127.0.0.1:${service.port}`);
      try {
        const users = await Promise.all(
          Array.from({ length: 10 }, async () => {
            const id = randomUserId();
            return { id, token: await mintToken(id) };
          }),
        );
        for (const u of users) await client.unary("updateProfile", { profile: { firstName: "Up" } }, u.token);
        await redis.stop();
        const from = service.logs.length;

        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < WRITES; i++) {
          const u = users[i % users.length]!;
          calls.push(client.unary("updateProfile", { profile: { firstName: `Down ${i}` } }, u.token));
        }
        for (let i = 0; i < READS; i++) {
          const u = users[i % users.length]!;
          calls.push(client.unary("getProfile", {}, u.token));
        }
        await Promise.all(calls);
        const burstEnded = performance.now();
        const during = () => service.logs.slice(from);
        // Lines are written asynchronously: they may trail the replies a little.
        await expect
          .poll(() => during().filter((l) => l.msg === "rpc").length, { timeout: 10_000 })
          .toBe(WRITES + READS);

        // Every invalidation failed, and every one is accounted for once the interval ends.
        const invalidations = () => during().filter((l) => l.msg === "cache invalidation failed");
        const accounted = () =>
          invalidations().reduce((n, l) => n + (typeof l.suppressed === "number" ? l.suppressed : 1), 0);
        await expect.poll(accounted, { timeout: REPEAT_INTERVAL_MS + 10_000, interval: 200 }).toBe(WRITES);

        const elapsedWindows = Math.ceil((performance.now() - burstEnded) / REPEAT_INTERVAL_MS) + 1;
        for (const msg of FAILURES) {
          const lines = during().filter((l) => l.msg === msg);
          // Keys: a few cache operations, one channel; each a first line and a summary per window.
          expect(lines.length, msg).toBeGreaterThan(0);
          expect(lines.length, msg).toBeLessThanOrEqual(8 * elapsedWindows);
        }
        const summary = invalidations().find((l) => typeof l.suppressed === "number");
        expect(summary).toMatchObject({ level: 50 });
        expect(summary?.suppressed_over_ms).toBeGreaterThanOrEqual(REPEAT_INTERVAL_MS);
        // Besides the one line per RPC, a 300-call burst leaves a handful of lines, not hundreds.
        const others = during().filter((l) => l.msg !== "rpc");
        expect(others.length).toBeLessThan(30);
      } finally {
        client.close();
      }
    },
    REPEAT_INTERVAL_MS + 40_000,
  );
});
