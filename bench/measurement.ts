// One measured run (a floor or a scenario), in the shape the report and the
// JSON result file use.

import type { SelfTime } from "./cpuprofile-summary.js";
import { summarize, type Histogram, type LatencySummary } from "./latency.js";

export interface Measurement {
  name: string;
  kind: "floor" | "scenario";
  generator: "h2load" | "node";
  /** Calls in flight. */
  concurrency: number;
  requests: number;
  errors: number;
  seconds: number;
  /** Calls per second. */
  throughput: number;
  /** Profiles per call (100 for the batch); items/s = throughput × this. */
  itemsPerCall: number;
  latency: LatencySummary;
  /** Scenario-specific figures (hit ratio, query count, ...). */
  extra: Record<string, unknown>;
  notes: string[];
  /** When the service under test was the target: the measured window on the monotonic clock (µs). */
  serviceWindowUs?: { fromUs: number; toUs: number };
  /** With --cpu-prof: the service's CPU time within that window. */
  serviceCpu?: ServiceCpu;
}

export interface ServiceCpu {
  /** Busy (non-idle) service CPU per measured call. */
  busyMicrosecondsPerCall: number;
  busyShareOfWindow: number;
  topLocations: SelfTime[];
  topFunctions: SelfTime[];
  inclusive: SelfTime[];
}

export interface RawRun {
  requests: number;
  errors: number;
  elapsedMs: number;
  histogram: Histogram;
}

export function measurement(
  name: string,
  kind: Measurement["kind"],
  generator: Measurement["generator"],
  concurrency: number,
  run: RawRun,
  more: Partial<Pick<Measurement, "itemsPerCall" | "extra" | "notes" | "serviceWindowUs">> = {},
): Measurement {
  const seconds = run.elapsedMs / 1000;
  return {
    name,
    kind,
    generator,
    concurrency,
    requests: run.requests,
    errors: run.errors,
    seconds: Math.round(seconds * 100) / 100,
    throughput: seconds > 0 ? Math.round((run.requests / seconds) * 10) / 10 : 0,
    itemsPerCall: more.itemsPerCall ?? 1,
    latency: summarize(run.histogram),
    extra: more.extra ?? {},
    notes: more.notes ?? [],
    serviceWindowUs: more.serviceWindowUs,
  };
}
