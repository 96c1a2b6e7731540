// The goals (issue 12's ratios against the bare floors, and issue 5's Batch,
// Zipf and Stampede), as ratios between measurements of the same run, looked
// up by typed id. Ratios are taken round by round (a floor and its target ran
// side by side in each round) and reported as the median and the spread.
// A goal whose measurements were selected but are missing is a bench bug: it
// throws. One whose groups were left out with --only says so.

import {
  MEASURES,
  median,
  type MeasureId,
  type Measurement,
  type RoundFigures,
  type ScenarioGroup,
} from "./measurement.js";

export interface GoalResult {
  scenario: string;
  goal: string;
  measured: string;
  /** The median ratio (or the figure) the verdict is about. */
  value?: number;
  /** Lowest and highest per-round ratio. */
  spread?: [number, number];
  /** null: reported, or not run. */
  met: boolean | null;
}

type Get = (id: MeasureId) => Measurement;
type Verdict = Omit<GoalResult, "scenario" | "goal">;

interface Goal {
  scenario: string;
  goal: string;
  inputs: readonly MeasureId[];
  evaluate(get: Get): Verdict;
}

const r2 = (x: number) => Math.round(x * 100) / 100;
const int = (x: number) => Math.round(x).toLocaleString("en");

/** `f` over the rounds the measurements share, summarized against a bound. */
function perRound(
  ms: Measurement[],
  f: (rounds: RoundFigures[]) => number,
  meets: (median: number) => boolean,
  detail: string,
): Verdict {
  const n = Math.min(...ms.map((m) => m.rounds.length));
  const values = Array.from({ length: n }, (_, i) => f(ms.map((m) => m.rounds[i]!)));
  const value = median(values);
  const spread: [number, number] = [Math.min(...values), Math.max(...values)];
  const range = n > 1 ? ` (${r2(spread[0])}–${r2(spread[1])} over ${n} rounds)` : "";
  return { value, spread, measured: `${r2(value)} ×${range}; ${detail}`, met: meets(value) };
}

function throughputRatio(scenario: string, target: MeasureId, floor: MeasureId, atLeast: number): Goal {
  return {
    scenario,
    goal: `≥ ${atLeast} ×`,
    inputs: [target, floor],
    evaluate: (get) => {
      const [t, f] = [get(target), get(floor)];
      return perRound(
        [t, f],
        ([a, b]) => a!.throughput / b!.throughput,
        (v) => v >= atLeast,
        `${int(t.throughput)} vs ${int(f.throughput)} calls/s`,
      );
    },
  };
}

/** target p50 ÷ Σ weight × floor p50, all at one call in flight. */
function p50Sum(scenario: string, target: MeasureId, floors: [MeasureId, number][], atMost: number): Goal {
  return {
    scenario,
    goal: `≤ ${atMost} ×`,
    inputs: [target, ...floors.map(([id]) => id)],
    evaluate: (get) => {
      const ms = [get(target), ...floors.map(([id]) => get(id))];
      const sum = (ps: number[]) => floors.reduce((s, [, w], i) => s + w * ps[i]!, 0);
      return perRound(
        ms,
        ([t, ...fs]) => t!.p50 / sum(fs.map((f) => f.p50)),
        (v) => v <= atMost,
        `p50 ${ms[0]!.latency.p50} ms vs ${r2(sum(ms.slice(1).map((m) => m.latency.p50)))} ms`,
      );
    },
  };
}

const WATCHERS_GOAL = 10_000;

export const GOALS: readonly Goal[] = [
  throughputRatio("Hit, gRPC, 64 in flight, throughput ÷ bare grpc-js unary", "hit", "f-grpc-js", 0.6),
  throughputRatio("Hit, gRPC, throughput ÷ bare node:http2 fixed reply", "hit", "f-http2", 0.35),
  throughputRatio("Hit, Connect protocol, throughput ÷ bare Connect-ES unary (h2c)", "hit-connect", "f-connect", 0.8),
  p50Sum(
    "Hit p50 @1 ÷ (F-grpc-js + F-redis)",
    "hit@1",
    [
      ["f-grpc-js@1", 1],
      ["f-redis@1", 1],
    ],
    1.5,
  ),
  p50Sum(
    "Miss p50 @1 ÷ (F-grpc-js + F-pg + 2 × F-redis)",
    "miss@1",
    [
      ["f-grpc-js@1", 1],
      ["f-pg@1", 1],
      ["f-redis@1", 2],
    ],
    1.3,
  ),
  p50Sum(
    "Write p50 @1 ÷ (F-grpc-js + F-write + 2 × F-redis)",
    "write@1",
    [
      ["f-grpc-js@1", 1],
      ["f-write@1", 1],
      ["f-redis@1", 2],
    ],
    1.3,
  ),
  {
    scenario: `Watch, ${WATCHERS_GOAL.toLocaleString("en")} watchers on one instance, write ack → event p99`,
    goal: "< 100 ms",
    inputs: ["watch"],
    evaluate: (get) => {
      const w = get("watch");
      const watchers = w.extra.watchers as number;
      const p99 = w.latency.p99;
      const full = watchers >= WATCHERS_GOAL;
      return {
        value: p99,
        measured:
          `${p99} ms${full ? "" : ` with only ${watchers} watchers`}, p50 ${w.latency.p50} ms; ` +
          `${Math.round(((w.extra.arrivedBeforeAck as number) / w.requests) * 100)}% before the ack (counted as 0); ` +
          `write start → event p99 ${(w.extra.writeStartToEvent as { p99: number }).p99} ms`,
        met: full ? p99 < 100 : null,
      };
    },
  },
  {
    scenario: "Batch profiles/s ÷ Hit calls/s",
    goal: "≥ 10 ×",
    inputs: ["batch", "hit"],
    evaluate: (get) => {
      const perSecond = get("batch").throughput * get("batch").itemsPerCall;
      const ratio = perSecond / get("hit").throughput;
      return {
        value: ratio,
        measured: `${r2(ratio)} ×; ${int(perSecond)} profiles/s vs ${int(get("hit").throughput)}`,
        met: ratio >= 10,
      };
    },
  },
  {
    scenario: "Zipf: hit ratio and p99",
    goal: "reported (seed: 93%)",
    inputs: ["zipf"],
    evaluate: (get) => {
      const z = get("zipf");
      const ratio = z.extra.cacheHitRatio as number;
      return { value: ratio, measured: `hit ratio ${r2(ratio * 100)}%, p99 ${z.latency.p99} ms`, met: null };
    },
  },
  {
    scenario: "Tracing: Hit throughput, tracing on ÷ off",
    goal: "reported",
    inputs: ["hit-trace-off", "hit-trace-on"],
    evaluate: (get) => {
      const [off, on] = [get("hit-trace-off"), get("hit-trace-on")];
      return {
        ...perRound(
          [on, off],
          ([a, b]) => a!.throughput / b!.throughput,
          () => true,
          `${int(on.throughput)} vs ${int(off.throughput)} calls/s; p99 ${on.latency.p99} vs ${off.latency.p99} ms`,
        ),
        met: null,
      };
    },
  },
  {
    scenario: "Tracing off: Hit throughput ÷ the --baseline checkout's",
    goal: "reported (≈ 1)",
    // The baseline row exists only with --baseline.
    inputs: ["hit-trace-off"],
    evaluate: (get) => {
      const off = get("hit-trace-off");
      let baseline: Measurement;
      try {
        baseline = get("hit-baseline");
      } catch {
        return { measured: "not run (no --baseline DIR)", met: null };
      }
      return {
        ...perRound(
          [off, baseline],
          ([a, b]) => a!.throughput / b!.throughput,
          () => true,
          `${int(off.throughput)} vs ${int(baseline.throughput)} calls/s; CPU per call ` +
            `${off.cpuPerCallUs ?? "?"} vs ${baseline.cpuPerCallUs ?? "?"} µs`,
        ),
        met: null,
      };
    },
  },
  {
    scenario: "Stampede: PostgreSQL queries for one cold key",
    goal: "exactly 1, nobody fails",
    inputs: ["stampede"],
    evaluate: (get) => {
      const e = get("stampede").extra;
      return {
        value: e.pgQueries as number,
        measured: `${e.pgQueries} queries, ${e.answered} answered, ${e.failed} failed`,
        met: e.pgQueries === 1 && e.failed === 0,
      };
    },
  },
];

export function evaluateGoals(all: readonly Measurement[], ran: ReadonlySet<ScenarioGroup>): GoalResult[] {
  const get: Get = (id) => {
    const m = all.find((x) => x.id === id);
    if (m === undefined) throw new Error(`goals: measurement "${id}" is missing from the run`);
    return m;
  };
  return GOALS.map((g) => {
    const left = g.inputs.filter((id) => !ran.has(MEASURES[id].group));
    if (left.length > 0)
      return {
        scenario: g.scenario,
        goal: g.goal,
        measured: `not run (--only left out ${left.join(", ")})`,
        met: null,
      };
    return { scenario: g.scenario, goal: g.goal, ...g.evaluate(get) };
  });
}
