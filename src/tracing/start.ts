// Turns tracing on when OTEL_EXPORTER_OTLP_ENDPOINT (or the traces-only
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and OTEL_SDK_DISABLED is not
// true. Off, nothing of OpenTelemetry is ever loaded: the SDK comes in by a
// dynamic import, below, only when on.

import type { Logger } from "../log/logger.js";
import type { RunningTracing, SdkOptions } from "./sdk.js";

export type { RunningTracing } from "./sdk.js";

export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return false;
  if ((env.OTEL_TRACES_EXPORTER ?? "").trim().toLowerCase() === "none") return false;
  return nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT) || nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Starts tracing if the environment asks for it; undefined when it stays off. */
export async function startTracing(
  env: NodeJS.ProcessEnv,
  log: Logger,
  options: SdkOptions = {},
): Promise<RunningTracing | undefined> {
  if (!tracingWanted(env)) return undefined;
  const { startSdk } = await import("./sdk.js");
  return startSdk(env, log, options);
}

function nonEmpty(s: string | undefined): boolean {
  return s !== undefined && s.trim() !== "";
}
