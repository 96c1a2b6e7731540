// The two mechanisms that keep a burst of watch opens off the pool: FreshRead
// (one query for many callers, never an answer older than the call) and
// BoundedConcurrency (a fixed share of the pool, a bounded wait, then a refusal).

import { describe, expect, it } from "vitest";
import { BoundedConcurrency, QueueFullError } from "../src/events/bounded-concurrency.js";
import { FreshRead } from "../src/events/fresh-read.js";

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("FreshRead", () => {
  it("serves a burst with at most two reads, each caller from a read begun after it asked", async () => {
    let version = 0;
    const started: number[] = [];
    // Like a query: it sees what was committed when it began.
    const reads = new FreshRead(async () => {
      const seen = version;
      started.push(seen);
      await tick();
      return seen;
    });
    const first = reads.get();
    version = 1; // committed after the first read began, before the burst asked
    const burst = Array.from({ length: 100 }, () => reads.get());
    expect(await first).toBe(0);
    expect(new Set(await Promise.all(burst))).toEqual(new Set([1]));
    expect(started).toEqual([0, 1]);
  });

  it("rejects the callers of a failed read, and reads again on the next call", async () => {
    let fail = true;
    const reads = new FreshRead(async () => {
      await tick();
      if (fail) throw new Error("down");
      return "up";
    });
    await expect(Promise.all([reads.get(), reads.get()])).rejects.toThrow("down");
    fail = false;
    expect(await reads.get()).toBe("up");
  });
});

describe("BoundedConcurrency", () => {
  it("runs at most `concurrency` tasks, in order, and refuses beyond the queue or after the wait", async () => {
    const limiter = new BoundedConcurrency({ concurrency: 2, maxQueued: 2, maxWaitMs: 10_000 });
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const gates: (() => void)[] = [];
    const task = (i: number) => () =>
      new Promise<number>((resolve) => {
        running++;
        peak = Math.max(peak, running);
        order.push(i);
        gates.push(() => {
          running--;
          resolve(i);
        });
      });
    const accepted = [0, 1, 2, 3].map((i) => limiter.run(task(i)));
    await expect(limiter.run(task(4))).rejects.toEqual(new QueueFullError("full"));
    while (gates.length > 0 || order.length < 4) {
      await tick();
      gates.shift()?.();
    }
    expect(await Promise.all(accepted)).toEqual([0, 1, 2, 3]);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(peak).toBe(2);

    const slow = new BoundedConcurrency({ concurrency: 1, maxQueued: 10, maxWaitMs: 20 });
    let release!: () => void;
    const holder = slow.run(() => new Promise<void>((r) => (release = r)));
    await expect(slow.run(async () => "late")).rejects.toEqual(new QueueFullError("timeout"));
    expect(slow.queued).toBe(0);
    release();
    await holder;
    expect(await slow.run(async () => "after")).toBe("after");
  });
});
