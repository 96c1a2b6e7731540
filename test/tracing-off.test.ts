// Tracing is off by default: with OTEL_EXPORTER_OTLP_ENDPOINT unset, no
// OpenTelemetry SDK is loaded, no tracer provider is registered, no driver
// is patched and no outbox row records a trace context.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { create, type DescMessage } from "@bufbuild/protobuf";
import { INVALID_TRACEID, trace, type ProxyTracerProvider } from "@opentelemetry/api";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { createLogger } from "../src/log/logger.js";
import { startTracing, tracingWanted } from "../src/tracing/start.js";
import { tracing } from "../src/tracing/tracing.js";
import { genericClient, grpc } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

const run = promisify(execFile);

/** The @opentelemetry packages resolved by loading the service and starting tracing in a fresh process. */
async function packagesLoaded(env: NodeJS.ProcessEnv): Promise<string[]> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", "test/fixtures/tracing-modules.ts"], {
    env,
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as string[];
}

function withoutOtel(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("OTEL_")) delete env[name];
  return env;
}

describe("with OTEL_EXPORTER_OTLP_ENDPOINT unset", () => {
  it("loads no OpenTelemetry SDK: only the API, which prom-client imports anyway", async () => {
    expect(await packagesLoaded(withoutOtel())).toEqual(["@opentelemetry/api"]);
    // The same probe sees the SDK once the variable is set.
    const on = await packagesLoaded({ ...withoutOtel(), OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" });
    expect(on).toEqual(
      expect.arrayContaining([
        "@opentelemetry/sdk-trace",
        "@opentelemetry/exporter-trace-otlp-proto",
        "@opentelemetry/instrumentation-pg",
        "@opentelemetry/instrumentation-ioredis",
      ]),
    );
  });

  it("is off unless an endpoint is set, and OTEL_SDK_DISABLED wins", () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: " " })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" })).toBe(
      false,
    );
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_TRACES_EXPORTER: "none" })).toBe(
      false,
    );
  });

  describe("a running service", () => {
    let svc: TestService;
    beforeAll(async () => {
      expect(await startTracing({}, createLogger("silent"))).toBeUndefined();
      svc = await startTestService({ label: "tracing_off" });
    });
    afterAll(async () => {
      await svc?.close();
    });

    it("registers no tracer provider, patches no driver, and records no trace context in the outbox", async () => {
      const userId = randomUserId();
      const token = await mintToken(userId, { scope: "profiles:read profiles:write" });
      const client = genericClient(ProfileService, `127.0.0.1:${svc.port}`);
      try {
        const md = new grpc.Metadata();
        md.set("authorization", `Bearer ${token}`);
        md.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        const desc = ProfileService.method.updateProfile;
        await new Promise((resolve, reject) =>
          client.updateProfile!.call(
            client,
            create(desc.input as DescMessage, {
              userId,
              profile: { firstName: "Ada" },
              updateMask: { paths: ["first_name"] },
            }),
            md,
            (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)),
          ),
        );
      } finally {
        client.close();
      }

      expect(tracing()).toBeUndefined();
      const provider = trace.getTracerProvider() as ProxyTracerProvider;
      expect(provider.getDelegate().constructor.name).toBe("NoopTracerProvider");
      const probe = trace.getTracer("probe").startSpan("probe");
      expect(probe.isRecording()).toBe(false);
      expect(probe.spanContext().traceId).toBe(INVALID_TRACEID);

      expect((pg.Client.prototype.query as { __wrapped?: boolean }).__wrapped).toBeUndefined();
      expect((Redis.prototype as unknown as { sendCommand: { __wrapped?: boolean } }).sendCommand.__wrapped).toBe(
        undefined,
      );

      const { rows } = await svc.app.stores.db.query<{ trace_context: string | null }>(
        "SELECT trace_context FROM profile_events WHERE user_id = $1::uuid",
        [userId],
      );
      expect(rows).toEqual([{ trace_context: null }]);
    });
  });
});
