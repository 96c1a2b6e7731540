// GET /metrics on its own port, scraped over HTTP after real RPCs: the seed's
// names, go-grpc-prometheus' per-RPC series, and the cache gauges.

import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenMetrics, type MetricsServer } from "../src/metrics/metrics-server.js";
import { grpcHealthClient } from "./support/grpc-health-client.js";
import { sample } from "./support/prometheus.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let svc: TestService;
let server: MetricsServer;

beforeAll(async () => {
  svc = await startTestService({ label: "metrics" });
  server = await listenMetrics(svc.app.metrics.registry, 0, "127.0.0.1");
});
afterAll(async () => {
  await server?.close();
  await svc?.close();
});

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return res.text();
}

describe("GET /metrics", () => {
  it("exports the seed's metrics, per-RPC metrics with gRPC codes, and the cache gauges", async () => {
    const me = randomUserId();
    const token = await mintToken(me);
    await svc.grpc.unary("updateProfile", { profile: { firstName: "M" } }, token);
    await svc.grpc.unary("getProfile", {}, token); // miss
    await svc.grpc.unary("getProfile", {}, token); // hit
    const admin = await mintToken(randomUserId(), { scope: "profiles:read" });
    await expect(svc.grpc.unary("getProfile", { userId: randomUserId() }, admin)).rejects.toMatchObject({
      code: Code.NotFound,
    });
    await expect(svc.grpc.unary("getProfile", { userId: "not-a-uuid" }, admin)).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await expect(svc.grpc.unary("getProfile", {})).rejects.toMatchObject({ code: Code.Unauthenticated });
    const health = grpcHealthClient(`127.0.0.1:${svc.port}`);
    await health.check("");
    health.close();

    const text = await scrape();
    const rpc = { grpc_service: "profile.v1.ProfileService", grpc_method: "GetProfile", grpc_type: "unary" };
    expect(sample(text, "grpc_server_started_total", rpc)).toBe(5);
    expect(sample(text, "grpc_server_handled_total", { ...rpc, grpc_code: "OK" })).toBe(2);
    expect(sample(text, "grpc_server_handled_total", { ...rpc, grpc_code: "NotFound" })).toBe(1);
    expect(sample(text, "grpc_server_handled_total", { ...rpc, grpc_code: "InvalidArgument" })).toBe(1);
    expect(sample(text, "grpc_server_handled_total", { ...rpc, grpc_code: "Unauthenticated" })).toBe(1);
    expect(sample(text, "grpc_server_handling_seconds_count", rpc)).toBe(5);
    expect(sample(text, "grpc_server_handling_seconds_bucket", { ...rpc, le: "+Inf" })).toBe(5);
    expect(
      sample(text, "grpc_server_handled_total", {
        grpc_service: "profile.v1.ProfileService",
        grpc_method: "UpdateProfile",
        grpc_type: "unary",
        grpc_code: "OK",
      }),
    ).toBe(1);
    expect(
      sample(text, "grpc_server_handled_total", {
        grpc_service: "grpc.health.v1.Health",
        grpc_method: "Check",
        grpc_type: "unary",
        grpc_code: "OK",
      }),
    ).toBe(1);

    // The seed's names and labels.
    const hits = sample(text, "cache_hits_total", { cache_type: "profile" })!;
    const misses = sample(text, "cache_misses_total", { cache_type: "profile" })!;
    expect(hits).toBe(1);
    expect(misses).toBeGreaterThanOrEqual(2);
    expect(sample(text, "api_response_time_seconds_count", { endpoint: "get_profile", cache_status: "hit" })).toBe(1);
    expect(
      sample(text, "api_response_time_seconds_bucket", { endpoint: "get_profile", cache_status: "miss", le: "+Inf" }),
    ).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^# HELP cache_size_bytes .*MEMORY USAGE.*SCAN/m);
    for (const type of ["profile", "preferences"]) {
      expect(sample(text, "cache_size_bytes", { cache_type: type })).toBeGreaterThanOrEqual(0);
    }

    // Hit rates: ours from the counters, and the seed's from Redis INFO (a shared server, so only its range).
    expect(sample(text, "cache_hit_ratio", { cache_type: "profile" })).toBeCloseTo(hits / (hits + misses), 10);
    const keyspace = sample(text, "redis_keyspace_hit_rate");
    expect(keyspace).toBeGreaterThan(0);
    expect(keyspace).toBeLessThanOrEqual(1);

    // Placeholders the event relay will drive, and Node's defaults.
    expect(sample(text, "watchers_connected")).toBe(0);
    expect(sample(text, "events_relayed_total")).toBe(0);
    expect(sample(text, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(text).toMatch(/^nodejs_heap_size_total_bytes \d+/m);
  });

  it("answers 404 elsewhere", async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(res.status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "POST" })).status).toBe(404);
  });
});
