// Issue 5's goals, as ratios between measurements of the same run.

import type { Measurement } from "./measurement.js";

export interface GoalResult {
  scenario: string;
  goal: string;
  measured: string;
  /** null: reported, no threshold. */
  met: boolean | null;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

export function evaluateGoals(all: readonly Measurement[], latencyConcurrency: number): GoalResult[] {
  const get = (name: string) => all.find((m) => m.name === name);
  const at = `@${latencyConcurrency}`;
  const out: GoalResult[] = [];

  const hitPair = (hitName: string, floorName: string, label: string) => {
    const hit = get(hitName);
    const floor = get(floorName);
    if (hit === undefined || floor === undefined) return;
    const tr = hit.throughput / floor.throughput;
    out.push({
      scenario: label,
      goal: `throughput ≥ 0.75 × ${floorName}`,
      measured: `${hit.throughput} / ${floor.throughput} req/s = ${r2(tr)} ×`,
      met: tr >= 0.75,
    });
    const pr = hit.latency.p99 / floor.latency.p99;
    out.push({
      scenario: label,
      goal: `p99 ≤ 2 × ${floorName} p99`,
      measured: `${hit.latency.p99} / ${floor.latency.p99} ms = ${r2(pr)} ×`,
      met: pr <= 2,
    });
  };
  hitPair("Hit", "F-rpc", "Hit");
  const spread = all.find((m) => m.name.startsWith("Hit (node"));
  if (spread !== undefined) hitPair(spread.name, "F-rpc (node)", `${spread.name} (cross-check)`);

  const sumGoal = (name: string, storeFloor: string) => {
    const target = get(`${name} ${at}`);
    const rpc = get(`F-rpc ${at}`);
    const store = get(`${storeFloor} ${at}`);
    const redis = get(`F-redis ${at}`);
    if (target === undefined || rpc === undefined || store === undefined || redis === undefined) return;
    const floor = rpc.latency.p50 + store.latency.p50 + 2 * redis.latency.p50;
    out.push({
      scenario: `${name} ${at}`,
      goal: `p50 ≤ 1.3 × (F-rpc + ${storeFloor} + 2 × F-redis) = 1.3 × ${r2(floor)} ms`,
      measured: `${target.latency.p50} ms = ${r2(target.latency.p50 / floor)} × the sum`,
      met: target.latency.p50 <= 1.3 * floor,
    });
  };
  sumGoal("Miss", "F-pg");
  sumGoal("Write", "F-write");

  const batch = get("Batch");
  const hit = get("Hit");
  if (batch !== undefined && hit !== undefined) {
    const perSecond = batch.throughput * batch.itemsPerCall;
    out.push({
      scenario: "Batch",
      goal: "profiles/s ≥ 10 × Hit",
      measured: `${Math.round(perSecond)} / ${hit.throughput} = ${r2(perSecond / hit.throughput)} ×`,
      met: perSecond >= 10 * hit.throughput,
    });
  }

  const zipf = get("Zipf");
  if (zipf !== undefined) {
    const ratio = zipf.extra.cacheHitRatio as number | undefined;
    const expected = zipf.extra.expectedHitRatio as { coldWindow: number; steadyState: number } | undefined;
    const model =
      expected === undefined
        ? ""
        : ` (model without writes: ${r2(expected.coldWindow * 100)}% for this window, ${r2(expected.steadyState * 100)}% steady state)`;
    out.push({
      scenario: "Zipf",
      goal: "report hit ratio (seed: 93%) and p99",
      measured: `hit ratio ${ratio === undefined ? "n/a" : `${r2(ratio * 100)}%`}${model}, p99 ${zipf.latency.p99} ms`,
      met: null,
    });
  }

  const st = get("Stampede");
  if (st !== undefined) {
    const q = st.extra.pgQueries as number;
    out.push({
      scenario: "Stampede",
      goal: "exactly 1 PostgreSQL query, nobody failed",
      measured: `${q} queries, ${st.extra.answered} answered, ${st.extra.failed} failed`,
      met: q === 1 && st.extra.failed === 0,
    });
  }
  return out;
}
