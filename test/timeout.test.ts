// withTimeout (src/lib/timeout.ts): the one way the service bounds a wait.

import { describe, expect, it } from "vitest";
import { withTimeout, type StartTimer } from "../src/lib/timeout.js";

/** A clock the test fires by hand, recording whether the race cleared it. */
function manualClock() {
  const state = { started: 0, cleared: 0, fire: () => {} };
  const clock: StartTimer = (_ms, onExpired) => {
    state.started++;
    state.fire = onExpired;
    return { clear: () => state.cleared++ };
  };
  return { clock, state };
}

describe("withTimeout", () => {
  it("resolves with the work's value when it comes first", async () => {
    await expect(withTimeout(Promise.resolve(7), 1000, () => "late")).resolves.toBe(7);
  });

  it("rejects with the work's error when it comes first", async () => {
    await expect(withTimeout(Promise.reject(new Error("boom")), 1000, () => "late")).rejects.toThrow("boom");
  });

  it("resolves with late()'s value once the time is up", async () => {
    await expect(withTimeout(new Promise(() => {}), 10, () => "late")).resolves.toBe("late");
  });

  it("rejects when late() throws", async () => {
    const late = () => {
      throw new Error("timed out");
    };
    await expect(withTimeout(new Promise(() => {}), 10, late)).rejects.toThrow("timed out");
  });

  it("clears its timer when the work wins", async () => {
    const { clock, state } = manualClock();
    await withTimeout(Promise.resolve(1), 1000, () => 0, clock);
    expect(state).toMatchObject({ started: 1, cleared: 1 });
  });

  it("clears its timer when the time is up", async () => {
    const { clock, state } = manualClock();
    const race = withTimeout(new Promise(() => {}), 1000, () => "late", clock);
    state.fire();
    await expect(race).resolves.toBe("late");
    expect(state.cleared).toBe(1);
  });

  it("leaves no unhandled rejection when the work fails after the time is up", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      let fail!: (err: Error) => void;
      const work = new Promise<never>((_, reject) => (fail = reject));
      await expect(withTimeout(work, 5, () => "late")).resolves.toBe("late");
      fail(new Error("too late"));
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
