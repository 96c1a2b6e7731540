// The one rule for "Redis is failing", shared by the cache store and the bus:
// failures in a row open the breaker for reads and fills, never for deletes
// and publishes, and a success closes the count again.

import { describe, expect, it } from "vitest";
import { CacheUnavailableError } from "../src/store/cache-store.js";
import { FailurePolicy } from "../src/store/failure-policy.js";

const down = () => Promise.reject(new Error("connection refused"));
const up = () => Promise.resolve("ok");

describe("FailurePolicy", () => {
  it("fails every failed call as CacheUnavailableError", async () => {
    const policy = new FailurePolicy({ timeoutMs: 100 });
    await expect(policy.run(down, true)).rejects.toBeInstanceOf(CacheUnavailableError);
  });

  it("times a call out after timeoutMs", async () => {
    const policy = new FailurePolicy({ timeoutMs: 50 });
    const started = performance.now();
    await expect(policy.run(() => new Promise<never>(() => {}), true)).rejects.toBeInstanceOf(CacheUnavailableError);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("skips calls that may be skipped after breakerThreshold failures in a row, for breakerMs", async () => {
    const policy = new FailurePolicy({ timeoutMs: 100, breakerThreshold: 3, breakerMs: 200 });
    for (let i = 0; i < 3; i++) await expect(policy.run(down, true)).rejects.toThrow();
    let called = false;
    const call = () => ((called = true), up());
    await expect(policy.run(call, true)).rejects.toBeInstanceOf(CacheUnavailableError);
    expect(called).toBe(false);
    // A delete or a publish is never skipped.
    await expect(policy.run(up, false)).resolves.toBe("ok");
    await new Promise((r) => setTimeout(r, 250));
    await expect(policy.run(up, true)).resolves.toBe("ok");
  });

  it("counts failures in a row only: a success in between starts the count again", async () => {
    const policy = new FailurePolicy({ timeoutMs: 100, breakerThreshold: 3, breakerMs: 10_000 });
    await expect(policy.run(down, true)).rejects.toThrow();
    await expect(policy.run(down, true)).rejects.toThrow();
    await policy.run(up, true);
    await expect(policy.run(down, true)).rejects.toThrow();
    await expect(policy.run(up, true)).resolves.toBe("ok");
  });
});
