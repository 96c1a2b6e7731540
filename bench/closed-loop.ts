// The Node load generator's driver: `concurrency` workers each keep exactly
// one operation in flight. Only operations that start after the warm-up and
// finish inside the window are measured.

import { probeWindow } from "./contention.js";
import { newHistogram, type Histogram } from "./latency.js";

/** Thrown by an operation when its input (such as the supply of cold keys) has run out. */
export class Exhausted extends Error {
  constructor() {
    super("exhausted");
  }
}

export interface ClosedLoopOptions {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /**
   * One operation; `seq` is unique across workers. Resolves on success (to a
   * label when latencies should also be split by kind), rejects on failure.
   */
  op: (seq: number, worker: number) => Promise<string | void>;
}

export interface ClosedLoopResult {
  requests: number;
  errors: number;
  firstError?: string;
  /** The measured window; shorter than asked when the input ran out. */
  elapsedMs: number;
  histogram: Histogram;
  /** Latencies per label the operation resolved to. */
  byLabel: Map<string, Histogram>;
  exhausted: boolean;
  /** The measured window on the monotonic clock (µs), for matching CPU profile samples. */
  windowUs: { fromUs: number; toUs: number };
  /** Share of the machine's CPU other work used during the window (see contention.ts). */
  foreignCpu?: number;
}

export async function closedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const histogram = newHistogram();
  const monotonicStartUs = Number(process.hrtime.bigint() / 1000n);
  const byLabel = new Map<string, Histogram>();
  const start = performance.now();
  const measureFrom = start + options.warmupMs;
  let measureUntil = measureFrom + options.durationMs;
  let seq = 0;
  let requests = 0;
  let errors = 0;
  let firstError: string | undefined;
  let exhausted = false;

  const contention = probeWindow(options.warmupMs, options.durationMs);
  const worker = async (w: number) => {
    while (!exhausted) {
      const t0 = performance.now();
      if (t0 >= measureUntil) return;
      let label: string | void;
      try {
        label = await options.op(seq++, w);
      } catch (err) {
        if (err instanceof Exhausted) {
          exhausted = true;
          measureUntil = Math.min(measureUntil, performance.now());
          return;
        }
        if (t0 >= measureFrom) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
        continue;
      }
      const t1 = performance.now();
      if (t0 >= measureFrom && t1 <= measureUntil) {
        requests++;
        const us = Math.max(1, Math.round((t1 - t0) * 1000));
        histogram.recordValue(us);
        if (label !== undefined) {
          let h = byLabel.get(label);
          if (h === undefined) byLabel.set(label, (h = newHistogram()));
          h.recordValue(us);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, w) => worker(w)));
  // An exhausted run ends early; its probe still reports the planned window.
  const foreignCpu = await contention;
  return {
    requests,
    errors,
    firstError,
    elapsedMs: Math.max(0, measureUntil - measureFrom),
    histogram,
    byLabel,
    exhausted,
    foreignCpu,
    windowUs: {
      fromUs: monotonicStartUs + (measureFrom - start) * 1000,
      toUs: monotonicStartUs + (measureUntil - start) * 1000,
    },
  };
}
