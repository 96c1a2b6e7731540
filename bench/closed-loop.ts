// The Node load generator's driver: `concurrency` workers each keep exactly
// one operation in flight. Only operations that start after the warm-up and
// finish inside the window are measured.

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
  /** One operation; `seq` is unique across workers. Rejects on failure. */
  op: (seq: number) => Promise<unknown>;
}

export interface LoadRun {
  requests: number;
  errors: number;
  firstError?: string;
  /** The measured window; shorter than asked when the input ran out. */
  elapsedMs: number;
  histogram: Histogram;
  exhausted?: boolean;
}

export async function closedLoop(o: ClosedLoopOptions): Promise<LoadRun> {
  const histogram = newHistogram();
  const measureFrom = performance.now() + o.warmupMs;
  let measureUntil = measureFrom + o.durationMs;
  let seq = 0;
  let requests = 0;
  let errors = 0;
  let firstError: string | undefined;
  let exhausted = false;

  const worker = async () => {
    while (!exhausted) {
      const t0 = performance.now();
      if (t0 >= measureUntil) return;
      try {
        await o.op(seq++);
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
        histogram.recordValue(Math.max(1, Math.round((t1 - t0) * 1000)));
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return { requests, errors, firstError, elapsedMs: Math.max(0, measureUntil - measureFrom), histogram, exhausted };
}
