// What a run measures, by typed id (goals and the report look measurements up
// by id, never by display name), and the shape each measurement takes in the
// report and the JSON result file.

import type { LoadRun } from "./closed-loop.js";
import { newHistogram, summarize, type Histogram, type LatencySummary } from "./latency.js";

export const SCENARIO_GROUPS = ["hit", "latency", "zipf", "watch", "stampede", "tracing"] as const;
export type ScenarioGroup = (typeof SCENARIO_GROUPS)[number];

export const MEASURES = {
  "f-http2": { name: "F-http2 (bare node:http2, fixed reply)", group: "hit" },
  "f-grpc-js": { name: "F-grpc-js (bare grpc-js unary)", group: "hit" },
  hit: { name: "Hit, gRPC", group: "hit" },
  "f-connect": { name: "F-connect (bare Connect-ES, Connect)", group: "hit" },
  "hit-connect": { name: "Hit, Connect", group: "hit" },
  batch: { name: "Batch (100 warm ids)", group: "hit" },
  "f-grpc-js@1": { name: "F-grpc-js @1", group: "latency" },
  "f-redis@1": { name: "F-redis (GET) @1", group: "latency" },
  "f-pg@1": { name: "F-pg (PK SELECT) @1", group: "latency" },
  "f-write@1": { name: "F-write (UPDATE txn) @1", group: "latency" },
  "hit@1": { name: "Hit, gRPC @1", group: "latency" },
  "miss@1": { name: "Miss @1", group: "latency" },
  "write@1": { name: "Write @1", group: "latency" },
  zipf: { name: "Zipf s=1.0, 5% writes", group: "zipf" },
  watch: { name: "Watch fan-out, ack → event", group: "watch" },
  stampede: { name: "Stampede, 2 instances", group: "stampede" },
  "hit-trace-off": { name: "Hit, gRPC, tracing off", group: "tracing" },
  "hit-trace-on": { name: "Hit, gRPC, tracing on (OTLP to a local sink)", group: "tracing" },
  "hit-baseline": { name: "Hit, gRPC, the --baseline checkout", group: "tracing" },
} as const satisfies Record<string, { name: string; group: ScenarioGroup }>;
export type MeasureId = keyof typeof MEASURES;

export type Generator = "h2load" | "node";

export interface RoundFigures {
  throughput: number;
  p50: number;
  p99: number;
}

export interface Measurement {
  id: MeasureId;
  name: string;
  kind: "floor" | "scenario";
  generator: Generator;
  /** Calls in flight. */
  concurrency: number;
  requests: number;
  seconds: number;
  /** Calls per second: the median over the rounds. */
  throughput: number;
  /** Profiles per call (100 for the batch); items/s = throughput × this. */
  itemsPerCall: number;
  /** Over all rounds together. */
  latency: LatencySummary;
  /** Each alternating round's figures (one entry when measured once). */
  rounds: RoundFigures[];
  /** The server process's CPU (user + system) per call, median over the rounds. */
  cpuPerCallUs?: number;
  /** The largest share of the machine's CPU that unrelated processes took in any round (0..1). */
  foreignCpu?: number;
  /** Scenario-specific figures (hit ratio, query count, ...). */
  extra: Record<string, unknown>;
  notes: string[];
}

export interface MeasureMeta {
  kind: Measurement["kind"];
  generator: Generator;
  concurrency: number;
  itemsPerCall?: number;
  cpuMs?: number;
  foreignCpu?: number;
  extra?: Record<string, unknown>;
  notes?: string[];
}

// Kept out of the JSON, for merging rounds.
const histograms = new WeakMap<Measurement, Histogram>();

export function measurement(id: MeasureId, run: LoadRun, meta: MeasureMeta): Measurement {
  const seconds = run.elapsedMs / 1000;
  const throughput = seconds > 0 ? Math.round((run.requests / seconds) * 10) / 10 : 0;
  const latency = summarize(run.histogram);
  const m: Measurement = {
    id,
    name: MEASURES[id].name,
    kind: meta.kind,
    generator: meta.generator,
    concurrency: meta.concurrency,
    requests: run.requests,
    seconds: Math.round(seconds * 100) / 100,
    throughput,
    itemsPerCall: meta.itemsPerCall ?? 1,
    latency,
    rounds: [{ throughput, p50: latency.p50, p99: latency.p99 }],
    cpuPerCallUs:
      meta.cpuMs === undefined || run.requests === 0 ? undefined : Math.round((meta.cpuMs * 1000) / run.requests),
    foreignCpu: meta.foreignCpu,
    extra: meta.extra ?? {},
    notes: meta.notes ?? [],
  };
  histograms.set(m, run.histogram);
  return m;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One measurement from several rounds of the same thing: totals, merged latencies, medians, each round's figures. */
function mergeRounds(rounds: readonly Measurement[]): Measurement {
  const first = rounds[0]!;
  if (rounds.length === 1) return first;
  const histogram = newHistogram();
  for (const r of rounds) histogram.add(histograms.get(r)!);
  const cpu = rounds.flatMap((r) => (r.cpuPerCallUs === undefined ? [] : [r.cpuPerCallUs]));
  return {
    ...first,
    requests: rounds.reduce((n, r) => n + r.requests, 0),
    seconds: Math.round(rounds.reduce((n, r) => n + r.seconds, 0) * 100) / 100,
    throughput: median(rounds.map((r) => r.throughput)),
    latency: summarize(histogram),
    rounds: rounds.flatMap((r) => r.rounds),
    cpuPerCallUs: cpu.length === 0 ? undefined : median(cpu),
    foreignCpu: Math.max(...rounds.map((r) => r.foreignCpu ?? 0)),
    extra: { ...first.extra, ...rounds.at(-1)!.extra },
  };
}

/**
 * Measures floors and their targets in alternating rounds (A B C A B C ...),
 * so that drift on a shared machine hits all of them alike, and merges each
 * one's rounds. Goals compare them round by round.
 */
export async function inRounds(rounds: number, runs: readonly (() => Promise<Measurement>)[]): Promise<Measurement[]> {
  const all: Measurement[][] = runs.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, run] of runs.entries()) all[i]!.push(await run());
  }
  return all.map(mergeRounds);
}
