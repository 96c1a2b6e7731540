// The sampler variables (read by src/tracing/sampler.ts, since the trace SDK
// no longer reads them), and a bad one stopping startup with the variable named.

import { describe, expect, it } from "vitest";
import { ConfigError } from "../src/config/config.js";
import { createLogger } from "../src/log/logger.js";
import { samplerFromEnv } from "../src/tracing/sampler.js";
import { startTracing } from "../src/tracing/start.js";
import { tracing } from "../src/tracing/tracing.js";

describe("OTEL_TRACES_SAMPLER", () => {
  it("defaults to parentbased_always_on, as the specification says", () => {
    expect(samplerFromEnv({}).toString()).toMatch(/^ParentBased\{root=AlwaysOnSampler/);
  });

  it.each([
    [{ OTEL_TRACES_SAMPLER: "always_on" }, /^AlwaysOnSampler$/],
    [{ OTEL_TRACES_SAMPLER: "always_off" }, /^AlwaysOffSampler$/],
    [{ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" }, /^TraceIdRatioBased\{0.25\}$/],
    [{ OTEL_TRACES_SAMPLER: "parentbased_always_off" }, /^ParentBased\{root=AlwaysOffSampler/],
    [
      { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" },
      /root=TraceIdRatioBased\{0.1\}/,
    ],
    [{ OTEL_TRACES_SAMPLER: " TraceIdRatio " }, /^TraceIdRatioBased\{1\}$/],
  ])("reads %j", (env, expected) => {
    expect(samplerFromEnv(env).toString()).toMatch(expected);
  });

  it.each([
    [{ OTEL_TRACES_SAMPLER: "sometimes" }, "OTEL_TRACES_SAMPLER"],
    [{ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "1.5" }, "OTEL_TRACES_SAMPLER_ARG"],
    [{ OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "half" }, "OTEL_TRACES_SAMPLER_ARG"],
  ])("refuses %j, naming %s", (env, variable) => {
    expect(() => samplerFromEnv(env)).toThrow(ConfigError);
    expect(() => samplerFromEnv(env)).toThrow(new RegExp(`^${variable}: `));
  });

  it("stops startTracing before anything is installed", async () => {
    await expect(
      startTracing(
        { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_TRACES_SAMPLER: "sometimes" },
        createLogger("silent"),
      ),
    ).rejects.toThrow(ConfigError);
    expect(tracing()).toBeUndefined();
  });
});
