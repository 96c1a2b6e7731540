// What "Redis is failing" means, in one place, for the cache and the bus alike
// (they share one connection, so they share one verdict):
// - a call that has not answered within `timeoutMs` has failed, but the time
//   our own event loop was too busy to read the answer is not held against
//   Redis (lagTolerantClock);
// - after `breakerThreshold` failures in a row (more than one: a single
//   timeout can be a busy loop rather than a sick Redis), calls that may be
//   skipped fail at once for `breakerMs`, so reads go straight to PostgreSQL
//   instead of each waiting out the timeout. Deletes and publishes are never
//   skipped: a write must always try to invalidate.

import type { CacheStore, LeasedFill } from "./cache-store.js";
import { CacheUnavailableError } from "./cache-store.js";
import { withTimeout } from "../lib/timeout.js";
import { lagTolerantClock } from "./event-loop-lag.js";

export interface FailurePolicyOptions {
  timeoutMs: number;
  breakerThreshold: number;
  breakerMs: number;
}

export const FAILURE_POLICY_DEFAULTS: Omit<FailurePolicyOptions, "timeoutMs"> = {
  breakerThreshold: 3,
  breakerMs: 1000,
};

const timedOut = (): never => {
  throw new Error("no answer in time");
};

export class FailurePolicy {
  readonly options: FailurePolicyOptions;
  private failuresInARow = 0;
  private skipUntil = 0;

  constructor(options: Pick<FailurePolicyOptions, "timeoutMs"> & Partial<FailurePolicyOptions>) {
    this.options = { ...FAILURE_POLICY_DEFAULTS, ...options };
  }

  /** Runs one call to Redis; any failure is a CacheUnavailableError. */
  async run<T>(call: () => Promise<T>, maySkip: boolean): Promise<T> {
    if (maySkip && Date.now() < this.skipUntil) throw new CacheUnavailableError(new Error("breaker open"));
    try {
      const result = await withTimeout(call(), this.options.timeoutMs, timedOut, lagTolerantClock);
      this.failuresInARow = 0;
      return result;
    } catch (err) {
      if (++this.failuresInARow >= this.options.breakerThreshold) {
        this.skipUntil = Date.now() + this.options.breakerMs;
        this.failuresInARow = 0;
      }
      throw new CacheUnavailableError(err);
    }
  }
}

/** A cache store under a FailurePolicy: reads and fills may be skipped, deletes never. */
export class GuardedCacheStore implements CacheStore {
  constructor(
    private readonly inner: CacheStore,
    private readonly policy: FailurePolicy,
  ) {}

  getMany(keys: readonly string[]): Promise<(string | null)[]> {
    return this.policy.run(() => this.inner.getMany(keys), true);
  }

  acquireLeases(keys: readonly string[], lease: string, ttlMs: number, graceMs?: number): Promise<(string | null)[]> {
    return this.policy.run(() => this.inner.acquireLeases(keys, lease, ttlMs, graceMs), true);
  }

  fillLeased(entries: readonly LeasedFill[]): Promise<boolean[]> {
    return this.policy.run(() => this.inner.fillLeased(entries), true);
  }

  restoreGrace(entries: readonly { key: string; lease: string }[]): Promise<boolean[]> {
    return this.policy.run(() => this.inner.restoreGrace(entries), true);
  }

  delete(keys: readonly string[]): Promise<void> {
    return this.policy.run(() => this.inner.delete(keys), false);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
