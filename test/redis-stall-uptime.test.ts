// A Redis that freezes long after startup costs a read REDIS_TIMEOUT_MS, not
// a figure that grows with the process's uptime. The service runs as its own
// process, idles first, and only then meets its first stalled Redis.

import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { PrivateRedis } from "./support/private-redis.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

const IDLE_MS = 12_000;
const REDIS_TIMEOUT_MS = 100;

let database: TestDatabase;
let redis: PrivateRedis;
let service: ChildService;

beforeAll(async () => {
  database = await createTestDatabase("redis_stall_uptime");
  redis = await PrivateRedis.start();
  service = await ChildService.start(
    await serviceEnv(
      { databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("redis_stall_uptime"), redisUrl: redis.url },
      {
        REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
      },
    ),
  );
});
afterAll(async () => {
  await service?.stop("SIGKILL");
  await redis?.stop();
  await database?.drop();
});

describe("the first Redis stall after a long idle", () => {
  it(
    "falls back to PostgreSQL within about REDIS_TIMEOUT_MS, however long the process has been up",
    async () => {
      const client = createClient(ProfileService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${service.port}` }));
      const user = randomUserId();
      const headers = { authorization: `Bearer ${await mintToken(user)}` };
      await client.updateProfile({ profile: { firstName: "Idle" } }, { headers });
      // Cached now, so the stalled reads below really go to Redis first.
      await client.getProfile({}, { headers });
      await client.getProfile({}, { headers });

      await new Promise((r) => setTimeout(r, IDLE_MS));
      redis.pause();
      try {
        const started = performance.now();
        // A deadline well under the idle time: without the fix, these wait about twice the uptime.
        const reads = await Promise.all(
          Array.from({ length: 8 }, () => client.getProfile({}, { headers, timeoutMs: 5000 })),
        );
        const firstStall = performance.now() - started;
        expect(reads.map((r) => r.profile?.firstName)).toEqual(Array(8).fill("Idle"));
        // REDIS_TIMEOUT_MS plus PostgreSQL plus a busy 2-core machine; the bug costs seconds.
        expect(firstStall).toBeLessThan(REDIS_TIMEOUT_MS + 1500);
      } finally {
        redis.resume();
      }
    },
    IDLE_MS + 40_000,
  );
});
