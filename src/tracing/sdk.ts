// The OpenTelemetry SDK, set up from the standard OTEL_* variables: OTLP over
// HTTP (protobuf) to OTEL_EXPORTER_OTLP_ENDPOINT (the exporter reads its own
// variables: _HEADERS, _TIMEOUT, _COMPRESSION, the per-signal _TRACES_ ones),
// the sampler (sampler.ts), batching (OTEL_BSP_*), and the resource
// (OTEL_SERVICE_NAME, default profile-service; OTEL_RESOURCE_ATTRIBUTES).
// The pg and ioredis instrumentations give each query and command a span
// under the call that made it. Imported only by start.ts, only when on.

import { createRequire } from "node:module";
import { context, diag, DiagLogLevel, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { getNumberFromEnv, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { IORedisInstrumentation } from "@opentelemetry/instrumentation-ioredis";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  SimpleSpanProcessor,
  TracerProvider,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { Logger } from "../log/logger.js";
import { rateLimited } from "../log/rate-limited.js";
import { OtelTracing } from "./otel-tracing.js";
import { samplerFromEnv } from "./sampler.js";
import { installTracing } from "./tracing.js";

export const DEFAULT_SERVICE_NAME = "profile-service";

export interface SdkOptions {
  /** Replaces the OTLP exporter, and exports each span as it ends (tests: InMemorySpanExporter). */
  exporter?: SpanExporter;
}

export interface RunningTracing {
  /** Exports what is buffered, then stops tracing. */
  shutdown(): Promise<void>;
}

export function startSdk(env: NodeJS.ProcessEnv, log: Logger, options: SdkOptions = {}): RunningTracing {
  // First: a bad value stops startup before anything global is set.
  const sampler = samplerFromEnv(env);
  diag.setLogger(diagnostics(log), DiagLogLevel.WARN);
  const processor: SpanProcessor =
    options.exporter === undefined
      ? new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), ...batchingFromEnv() })
      : new SimpleSpanProcessor({ exporter: options.exporter });
  const provider = new TracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: DEFAULT_SERVICE_NAME }))
      .merge(detectResources({ detectors: [envDetector] })),
    sampler,
    spanProcessors: [processor],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  const instrumentations = instrumentDrivers(provider);
  installTracing(new OtelTracing(provider.getTracer(DEFAULT_SERVICE_NAME)));
  return {
    async shutdown() {
      installTracing(undefined);
      for (const i of instrumentations) i.disable();
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
      diag.disable();
    },
  };
}

/**
 * The drivers' instrumentations, patching the very modules the stores use.
 * They hook `require`, but the stores reach pg and ioredis through ESM
 * `import`, which never calls it, and usually before this runs. So each
 * module is required here once the hooks are in: Node hands back the one
 * module object the ESM imports share, and the hooks patch its classes'
 * prototypes, which every client (made before or after) uses.
 */
function instrumentDrivers(provider: TracerProvider) {
  const instrumentations = [
    // Spans only for queries made inside a traced call: the relay's and the watch hub's polls stay quiet.
    new PgInstrumentation({ requireParentSpan: true }),
    // The command's name only: arguments are cached profiles (personal data).
    new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
  ];
  for (const i of instrumentations) {
    i.setTracerProvider(provider);
    i.enable();
  }
  const require = createRequire(import.meta.url);
  require("pg");
  require("ioredis");
  return instrumentations;
}

/** OTEL_BSP_*: the batch span processor's settings (the SDK no longer reads them). */
function batchingFromEnv() {
  return {
    scheduledDelayMillis: getNumberFromEnv("OTEL_BSP_SCHEDULE_DELAY"),
    exportTimeoutMillis: getNumberFromEnv("OTEL_BSP_EXPORT_TIMEOUT"),
    maxQueueSize: getNumberFromEnv("OTEL_BSP_MAX_QUEUE_SIZE"),
    maxExportBatchSize: getNumberFromEnv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
  };
}

/** The SDK's own complaints (a collector that is down, a dropped batch), rate-limited into our log. */
function diagnostics(log: Logger) {
  const write = (level: "warn" | "error") => (message: string) =>
    rateLimited(log)[level](`otel: ${message.slice(0, 80)}`, {}, `tracing: ${message}`);
  const ignore = () => {};
  return { error: write("error"), warn: write("warn"), info: ignore, debug: ignore, verbose: ignore };
}
