// WORKERS=2: two node:cluster workers share the ports, each a full replica;
// the primary serves their metrics summed and drains them on SIGTERM. The
// embedded default refuses more than one worker.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import { ChildService } from "./support/child-service.js";
import { grpcProfileClient, type GrpcProfileClient } from "./support/grpc-client.js";
import { freePort } from "./support/child-process.js";
import { sample, scrape } from "./support/prometheus.js";
import { createTestDatabase, testRedisUrl, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken, TEST_JWT_SECRET } from "./support/tokens.js";

let database: TestDatabase;
let service: ChildService;
let client: GrpcProfileClient;

beforeAll(async () => {
  database = await createTestDatabase("workers");
  service = await ChildService.start({
    DATABASE_URL: database.url,
    REDIS_URL: testRedisUrl,
    REDIS_KEY_PREFIX: uniqueKeyPrefix("workers"),
    JWT_SECRET: TEST_JWT_SECRET,
    PORT: String(await freePort()),
    METRICS_PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    WARMUP_LIMIT: "0",
    DB_POOL_SIZE: "2",
    WORKERS: "2",
  });
  client = grpcProfileClient(`127.0.0.1:${service.port}`);
}, 60_000);
afterAll(async () => {
  client?.close();
  await service?.stop("SIGKILL");
  await database?.drop();
});

const listening = () => service.logs.filter((l) => l.msg === "profile-service listening");

describe("WORKERS=2", () => {
  it("starts two workers on the same ports, and serves calls", async () => {
    await expect.poll(() => listening().length, { timeout: 30_000 }).toBe(2);
    const [a, b] = listening();
    expect(a!.pid).not.toBe(b!.pid);
    expect(a!.port).toBe(b!.port);
    const user = randomUserId();
    const token = await mintToken(user);
    await client.unary("updateProfile", { profile: { firstName: "Worker" } }, token);
    const read = await client.unary("getProfile", {}, token);
    expect(read.profile?.firstName).toBe("Worker");
  });

  it("serves every worker's metrics, summed, on the primary's METRICS_PORT", async () => {
    const token = await mintToken(randomUserId());
    for (let i = 0; i < 20; i++) await client.unary("getProfile", {}, token).catch(() => {});
    const text = await scrape(service.metricsPort);
    const labels = { grpc_service: "profile.v1.ProfileService", grpc_method: "GetProfile", grpc_type: "unary" };
    expect(sample(text, "grpc_server_started_total", labels)).toBeGreaterThanOrEqual(21);
  });

  it("drains both workers on SIGTERM and exits 0", async () => {
    const pids = listening().map((l) => l.pid as number);
    expect(await service.stop("SIGTERM")).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(service.logs.filter((l) => l.msg === "stopped")).toHaveLength(2);
  });
});

describe("the embedded default", () => {
  it("refuses more than one worker", () => {
    expect(() => loadConfig({ WORKERS: "2" })).toThrow(/WORKERS/);
    expect(loadConfig({ WORKERS: "1" }).workers).toBe(1);
    const auto = loadConfig({ WORKERS: "auto", DATABASE_URL: database.url, REDIS_URL: testRedisUrl });
    expect(auto.workers).toBeGreaterThanOrEqual(1);
  });
});
