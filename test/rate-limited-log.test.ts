// The limiter behind the bounded log, on a real pino logger: one line per key
// per interval, a summary with the count of the rest, and a quiet key that
// comes back is logged at once.

import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { RateLimitedLog } from "../src/log/rate-limited.js";

const INTERVAL_MS = 200;

function capture(intervalMs = INTERVAL_MS) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line !== "") lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, limited: new RateLimitedLog(pino({ base: null, timestamp: false }, stream), intervalMs) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("RateLimitedLog", () => {
  it("writes the first line of a key, then one summary per interval with the count and the latest fields", async () => {
    const { lines, limited } = capture();
    for (let i = 0; i < 50; i++) limited.warn("k", { i }, "failed");
    limited.error("other", { i: 0 }, "other failed");
    expect(lines).toEqual([
      { level: 40, i: 0, msg: "failed" },
      { level: 50, i: 0, msg: "other failed" },
    ]);
    await sleep(INTERVAL_MS * 1.5);
    expect(lines.slice(2)).toEqual([
      { level: 40, i: 49, suppressed: 49, suppressed_over_ms: expect.any(Number), msg: "failed" },
    ]);

    // Still failing: the next window holds everything back, and reports it at its end.
    for (let i = 50; i < 60; i++) limited.warn("k", { i }, "failed");
    expect(lines).toHaveLength(3);
    await sleep(INTERVAL_MS);
    expect(lines.slice(3)).toEqual([
      { level: 40, i: 59, suppressed: 10, suppressed_over_ms: expect.any(Number), msg: "failed" },
    ]);

    // A key that went quiet for a whole window is written at once when it comes back.
    await sleep(INTERVAL_MS * 2.5);
    limited.warn("k", { i: 60 }, "failed");
    expect(lines.at(-1)).toEqual({ level: 40, i: 60, msg: "failed" });
  });

  it("never reports a window shorter than its interval", async () => {
    // Timers run on the loop's whole-millisecond clock, so one can fire up to
    // a millisecond before performance.now() says the interval is over
    // (CI saw a 9,999 ms window of 10,000). Forty short windows all but
    // guarantee one that opens late in its millisecond.
    const { lines, limited: short } = capture(10);
    const windows = 40;
    for (let w = 0; w < windows; w++) {
      short.warn(`k${w}`, {}, "failed");
      short.warn(`k${w}`, {}, "failed");
      await sleep(Math.random() * 3);
    }
    await expect.poll(() => lines.length, { timeout: 2_000, interval: 5 }).toBe(windows * 2);
    const spans = lines.flatMap((l) => (typeof l.suppressed_over_ms === "number" ? [l.suppressed_over_ms] : []));
    expect(spans).toHaveLength(windows);
    expect(Math.min(...spans)).toBeGreaterThanOrEqual(10);
  });

  it("reports what an open window held back when flushed, as at shutdown", () => {
    const { lines, limited } = capture();
    for (let i = 0; i < 5; i++) limited.error("k", { i }, "failed");
    limited.warn("quiet", {}, "once");
    limited.flush();
    expect(lines).toEqual([
      { level: 50, i: 0, msg: "failed" },
      { level: 40, msg: "once" },
      { level: 50, i: 4, suppressed: 4, suppressed_over_ms: expect.any(Number), msg: "failed" },
    ]);
    // Flushed windows are closed: the next line of a key goes out at once.
    limited.error("k", { i: 5 }, "failed");
    expect(lines.at(-1)).toEqual({ level: 50, i: 5, msg: "failed" });
  });
});
