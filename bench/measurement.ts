// One measured run (a floor or a scenario), in the shape the report and the
// JSON result file use.

import type { SelfTime, Window } from "./cpuprofile-summary.js";
import { newHistogram, summarize, type Histogram, type LatencySummary } from "./latency.js";

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
  /** When the service under test was the target: the measured window(s) on the monotonic clock (µs). */
  serviceWindowsUs?: Window[];
  /** Throughput of each round, when floor and target were measured in alternating rounds. */
  rounds?: number[];
  /** Share of the machine's CPU taken by unrelated processes during the window (0..1). */
  foreignCpu?: number;
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
  foreignCpu?: number;
}

export function measurement(
  name: string,
  kind: Measurement["kind"],
  generator: Measurement["generator"],
  concurrency: number,
  run: RawRun,
  more: Partial<Pick<Measurement, "itemsPerCall" | "extra" | "notes">> & { serviceWindowUs?: Window } = {},
): Measurement {
  const seconds = run.elapsedMs / 1000;
  const m: Measurement = {
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
    serviceWindowsUs: more.serviceWindowUs === undefined ? undefined : [more.serviceWindowUs],
    foreignCpu: run.foreignCpu,
  };
  histograms.set(m, run.histogram);
  return m;
}

// Kept out of the JSON, for merging rounds.
const histograms = new WeakMap<Measurement, Histogram>();

/** One measurement from several rounds of the same thing: totals, merged latencies, per-round throughput. */
export function mergeRounds(rounds: readonly Measurement[]): Measurement {
  const first = rounds[0]!;
  if (rounds.length === 1) return first;
  const histogram = newHistogram();
  for (const r of rounds) histogram.add(histograms.get(r)!);
  const requests = rounds.reduce((n, r) => n + r.requests, 0);
  const seconds = rounds.reduce((n, r) => n + r.seconds, 0);
  const merged: Measurement = {
    ...first,
    requests,
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    seconds: Math.round(seconds * 100) / 100,
    throughput: Math.round((requests / seconds) * 10) / 10,
    latency: summarize(histogram),
    serviceWindowsUs: rounds.flatMap((r) => r.serviceWindowsUs ?? []),
    rounds: rounds.map((r) => r.throughput),
    foreignCpu: Math.max(...rounds.map((r) => r.foreignCpu ?? 0)),
  };
  histograms.set(merged, histogram);
  return merged;
}

/**
 * Measures a floor and its targets in alternating rounds (A B A B ...), so
 * that drift on a shared machine hits both alike, and merges each one's rounds.
 */
export async function interleaved(rounds: number, runs: readonly (() => Promise<Measurement>)[]): Promise<Measurement[]> {
  const all: Measurement[][] = runs.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, run] of runs.entries()) all[i]!.push(await run());
  }
  return all.map(mergeRounds);
}
