// The real binary: graceful shutdown on SIGTERM, and what it logs.

import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../gen/health/v1/health_pb.js";
import { ChildService } from "./support/child-service.js";
import { grpc, grpcProfileClient } from "./support/grpc-client.js";
import { freePort } from "./support/private-redis.js";
import { createTestDatabase, testRedisUrl, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken, TEST_JWT_SECRET } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase("lifecycle");
});
afterAll(async () => {
  await database?.drop();
});

async function start(env: Record<string, string> = {}): Promise<ChildService> {
  return ChildService.start({
    DATABASE_URL: database.url,
    REDIS_URL: testRedisUrl,
    REDIS_KEY_PREFIX: uniqueKeyPrefix("lifecycle"),
    JWT_SECRET: TEST_JWT_SECRET,
    PORT: String(await freePort()),
    METRICS_PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    WARMUP_LIMIT: "0",
    ...env,
  });
}

describe("SIGTERM", () => {
  it("goes NOT_SERVING, ends streams with a bookmark then UNAVAILABLE, answers stuck calls UNAVAILABLE, and exits 0 in time", async () => {
    const service = await start({ SHUTDOWN_GRACE_SECONDS: "3" });
    const client = grpcProfileClient(`127.0.0.1:${service.port}`);
    const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${service.port}` }));
    const statuses: Serving[] = [];
    const healthWatch = (async () => {
      try {
        for await (const res of health.watch({ service: "profile.v1.ProfileService" })) statuses.push(res.status);
      } catch {
        // The stream ends with the server.
      }
    })();
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    try {
      const user = randomUserId();
      const token = await mintToken(user);
      await client.unary("updateProfile", { profile: { firstName: "Ready" } }, token);
      await expect.poll(() => statuses).toContain(Serving.SERVING);

      const stream = new WatchStream(client.stream({ userIds: [user] }, token));
      await stream.until((s) => s.received.length > 0);

      // Hold the per-user write lock, so an UpdateProfile is in flight when the signal comes.
      await blocker.query("SELECT pg_advisory_lock(1347, hashtext($1))", [user]);
      const stuck = client.unary("updateProfile", { profile: { firstName: "Stuck" } }, token).then(
        () => grpc.status.OK,
        (err: grpc.ServiceError) => err.code,
      );
      await new Promise((r) => setTimeout(r, 200));

      const signalled = Date.now();
      service.signal("SIGTERM");
      await stream.until((s) => s.error !== undefined, 5000, "the stream's end");
      expect(stream.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(stream.received.at(-1)?.kind.case).toBe("bookmark");
      expect(await stuck).toBe(grpc.status.UNAVAILABLE);

      const code = await service.stop();
      expect(code).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(3000 + 2000);
      expect(statuses).toContain(Serving.NOT_SERVING);
      expect(service.logs.some((l) => l.msg === "stopped")).toBe(true);
    } finally {
      client.close();
      await blocker.end();
      await healthWatch;
      await service.stop("SIGKILL");
    }
  });
});

describe("logs", () => {
  it("writes one JSON line per RPC with method, code, duration, cache status and user id, and never PII or tokens", async () => {
    const service = await start({ SHUTDOWN_GRACE_SECONDS: "1" });
    const client = grpcProfileClient(`127.0.0.1:${service.port}`);
    const user = randomUserId();
    const token = await mintToken(user);
    const secret = {
      firstName: "Zebediah",
      lastName: "Quackenbush",
      bio: "Collector of rare teaspoons",
      phone: "+44 7700 900123",
    };
    try {
      await client.unary("updateProfile", { profile: secret }, token);
      await client.unary("getProfile", {}, token);
      await client.unary("getProfile", {}, token);
      await client.unary("updateProfile", { profile: { ...secret, firstName: "Zebediah\u0000" } }, token).catch(() => {});
      await client.unary("updatePreferences", { preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } }, token);
    } finally {
      client.close();
      await service.stop();
    }
    const rpcs = service.logs.filter((l) => l.msg === "rpc");
    expect(rpcs.map((l) => [l.method, l.code, l.cache, l.user_id])).toEqual([
      ["profile.v1.ProfileService/UpdateProfile", "OK", "none", user],
      ["profile.v1.ProfileService/GetProfile", "OK", "miss", user],
      ["profile.v1.ProfileService/GetProfile", "OK", "hit", user],
      ["profile.v1.ProfileService/UpdateProfile", "InvalidArgument", "none", undefined],
      ["profile.v1.ProfileService/UpdatePreferences", "OK", "none", user],
    ]);
    expect(rpcs.every((l) => typeof l.duration_ms === "number")).toBe(true);
    for (const value of [...Object.values(secret), "teaspoons", token, token.split(".")[2]!]) {
      expect(service.output).not.toContain(value);
    }
  });
});
