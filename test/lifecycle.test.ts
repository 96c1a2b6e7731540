// The real binary: graceful shutdown on SIGTERM, and what it logs.

import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { userLockKey } from "../src/events/outbox.js";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../gen/health/v1/health_pb.js";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { grpc, grpcProfileClient } from "./support/grpc-client.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { until } from "./support/private-redis-processes.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase("lifecycle");
});
afterAll(async () => {
  await database?.drop();
});

async function start(env: Record<string, string> = {}): Promise<ChildService> {
  return ChildService.start(
    await serviceEnv({ databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("lifecycle") }, env),
  );
}

// One shutdown, watched from every side; each behaviour is its own test below.
describe("SIGTERM", () => {
  const seen = {
    statuses: [] as Serving[],
    streamError: undefined as number | undefined,
    lastMessage: undefined as string | undefined,
    stuckCall: undefined as grpc.status | undefined,
    exitCode: undefined as number | null | undefined,
    msToExit: 0,
    logs: [] as Record<string, unknown>[],
  };

  beforeAll(async () => {
    const service = await start({ SHUTDOWN_GRACE_SECONDS: "3" });
    const client = grpcProfileClient(`127.0.0.1:${service.port}`);
    const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${service.port}` }));
    const healthWatch = (async () => {
      try {
        for await (const res of health.watch({ service: "profile.v1.ProfileService" })) seen.statuses.push(res.status);
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
      await until("SERVING", async () => (seen.statuses.includes(Serving.SERVING) ? true : undefined));

      const stream = new WatchStream(client.stream({ userIds: [user] }, token));
      await stream.until((s) => s.received.length > 0);

      // Hold the per-user write lock, so an UpdateProfile is in flight when the signal comes.
      await blocker.query(`SELECT pg_advisory_lock(${userLockKey("$1")})`, [user]);
      const stuck = client.unary("updateProfile", { profile: { firstName: "Stuck" } }, token).then(
        () => grpc.status.OK,
        (err: grpc.ServiceError) => err.code,
      );
      await new Promise((r) => setTimeout(r, 200));

      const signalled = Date.now();
      service.signal("SIGTERM");
      await stream.until((s) => s.error !== undefined, 5000, "the stream's end");
      seen.streamError = stream.error?.code;
      seen.lastMessage = stream.received.at(-1)?.kind.case;
      seen.stuckCall = await stuck;
      seen.exitCode = await service.stop();
      seen.msToExit = Date.now() - signalled;
      seen.logs = service.logs;
    } finally {
      client.close();
      await blocker.end();
      await healthWatch;
      await service.stop("SIGKILL");
    }
  }, 60_000);

  it("goes NOT_SERVING", () => {
    expect(seen.statuses).toContain(Serving.NOT_SERVING);
  });

  it("ends watch streams with a bookmark, then UNAVAILABLE", () => {
    expect(seen.streamError).toBe(grpc.status.UNAVAILABLE);
    expect(seen.lastMessage).toBe("bookmark");
  });

  it("answers calls still stuck at the end UNAVAILABLE", () => {
    expect(seen.stuckCall).toBe(grpc.status.UNAVAILABLE);
  });

  it("exits 0 within the grace, saying it stopped", () => {
    expect(seen.exitCode).toBe(0);
    expect(seen.msToExit).toBeLessThan(3000 + 2000);
    expect(seen.logs.some((l) => l.msg === "stopped")).toBe(true);
  });
});

describe("logs", () => {
  const secret = {
    firstName: "Zebediah",
    lastName: "Quackenbush",
    bio: "Collector of rare teaspoons",
    phone: "+44 7700 900123",
  };
  let user: string;
  let token: string;
  let service: ChildService;
  let rpcs: Record<string, unknown>[];

  beforeAll(async () => {
    service = await start({ SHUTDOWN_GRACE_SECONDS: "1" });
    const client = grpcProfileClient(`127.0.0.1:${service.port}`);
    user = randomUserId();
    token = await mintToken(user);
    try {
      await client.unary("updateProfile", { profile: secret }, token);
      await client.unary("getProfile", {}, token);
      await client.unary("getProfile", {}, token);
      await client
        .unary("updateProfile", { profile: { ...secret, firstName: "Zebediah\u0000" } }, token)
        .catch(() => {});
      await client.unary(
        "updatePreferences",
        { preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
        token,
      );
    } finally {
      client.close();
      await service.stop();
    }
    rpcs = service.logs.filter((l) => l.msg === "rpc");
  }, 60_000);

  it("writes one JSON line per RPC with method, code, cache status and user id", () => {
    expect(rpcs.map((l) => [l.method, l.code, l.cache, l.user_id])).toEqual([
      ["profile.v1.ProfileService/UpdateProfile", "OK", "none", user],
      ["profile.v1.ProfileService/GetProfile", "OK", "miss", user],
      ["profile.v1.ProfileService/GetProfile", "OK", "hit", user],
      ["profile.v1.ProfileService/UpdateProfile", "InvalidArgument", "none", undefined],
      ["profile.v1.ProfileService/UpdatePreferences", "OK", "none", user],
    ]);
  });

  it("gives every RPC line its duration", () => {
    expect(rpcs.every((l) => typeof l.duration_ms === "number")).toBe(true);
  });

  it("never logs PII or tokens", () => {
    for (const value of [...Object.values(secret), "teaspoons", token, token.split(".")[2]!]) {
      expect(service.output).not.toContain(value);
    }
  });
});
