// Issue 9, item 6: series whose labels are known in advance are exported at 0
// from startup, as Prometheus advises and go-grpc-prometheus'
// InitializeMetrics does, so rate() and alerts never meet a missing series.
// Scraped from a fresh binary before any call.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../gen/health/v1/health_pb.js";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { sample, scrape } from "./support/prometheus.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";

let database: TestDatabase;
let service: ChildService;
const prefix = uniqueKeyPrefix("metrics_start");
let text: string;

beforeAll(async () => {
  database = await createTestDatabase("metrics_start");
  service = await ChildService.start(await serviceEnv({ databaseUrl: database.url, keyPrefix: prefix }));
  text = await scrape(service.metricsPort);
});
afterAll(async () => {
  await service?.stop("SIGKILL");
  await database?.drop();
});

const codes = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];
const grpcTypes = { unary: "unary", server_streaming: "server_stream", bidi_streaming: "bidi_stream" } as const;

describe("a fresh instance, before any call", () => {
  it("exports the cache counters at 0 for both cache types", () => {
    for (const name of [
      "cache_hits_total",
      "cache_misses_total",
      "cache_fills_rejected_total",
      "cache_values_too_large_total",
      "cache_stale_served_total",
      "cache_db_loads_total",
    ]) {
      for (const cache_type of ["profile", "preferences"]) expect(sample(text, name, { cache_type }), name).toBe(0);
    }
  });

  it("exports redis_fallbacks_total at 0 for every cache operation", () => {
    for (const operation of ["get", "fill", "poll", "suspect"]) {
      expect(sample(text, "redis_fallbacks_total", { operation }), operation).toBe(0);
    }
  });

  it("exports the event counters at 0 for every channel", () => {
    for (const channel of ["profile:updated", "profile:deleted", "preferences:updated"]) {
      for (const name of ["events_published_total", "event_publish_failures_total"]) {
        expect(sample(text, name, { channel: `${prefix}${channel}` }), `${name} ${channel}`).toBe(0);
      }
    }
  });

  it("exports grpc_server_started_total, grpc_server_handled_total (every code) and the histogram for every method", () => {
    const methods = [ProfileService, Health, ServerReflection, ServerReflectionV1alpha].flatMap((s) => s.methods);
    expect(methods.length).toBe(12);
    for (const method of methods) {
      const rpc = {
        grpc_service: method.parent.typeName,
        grpc_method: method.name,
        grpc_type: grpcTypes[method.methodKind as keyof typeof grpcTypes],
      };
      expect(sample(text, "grpc_server_started_total", rpc), method.name).toBe(0);
      for (const grpc_code of codes) {
        expect(sample(text, "grpc_server_handled_total", { ...rpc, grpc_code }), `${method.name} ${grpc_code}`).toBe(0);
      }
      expect(sample(text, "grpc_server_handling_seconds_count", rpc), method.name).toBe(0);
    }
  });

  it("exports the unlabelled counters at 0", () => {
    for (const name of ["unhandled_rejections_total", "cache_invalidation_failures_total", "events_relayed_total"]) {
      expect(sample(text, name), name).toBe(0);
    }
  });
});
