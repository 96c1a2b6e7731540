// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, as the specification
// defines them. The trace SDK we use (@opentelemetry/sdk-trace 3) no longer
// reads them itself, so they are read here, with the specification's
// default: parentbased_always_on.

import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from "@opentelemetry/sdk-trace";
import { ConfigError } from "../config/config.js";

export function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? "parentbased_always_on").trim().toLowerCase();
  const ratio = () => {
    const raw = env.OTEL_TRACES_SAMPLER_ARG;
    if (raw === undefined || raw.trim() === "") return 1;
    const r = Number(raw);
    if (!Number.isFinite(r) || r < 0 || r > 1) {
      throw new ConfigError("OTEL_TRACES_SAMPLER_ARG", `must be a ratio from 0 to 1, got "${raw}"`);
    }
    return r;
  };
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio());
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) });
    default:
      throw new ConfigError(
        "OTEL_TRACES_SAMPLER",
        `must be one of always_on, always_off, traceidratio, parentbased_always_on, ` +
          `parentbased_always_off, parentbased_traceidratio; got "${env.OTEL_TRACES_SAMPLER}"`,
      );
  }
}
