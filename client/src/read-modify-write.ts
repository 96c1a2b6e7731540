// The etag loop: read, compute the change from what was read, write it on
// condition that nothing changed in between (the etag), and on ABORTED start
// again from a fresh read. Bounded, with jittered waits, so writers that keep
// colliding spread out instead of colliding again in lockstep.

import * as grpc from "@grpc/grpc-js";
import { backoffDelay, sleep, type BackoffOptions } from "./backoff.js";
import { codeOf } from "./errors.js";

export interface ReadModifyWriteOptions {
  /** Reads before giving up with the last ABORTED (default 10). */
  maxAttempts?: number;
  /** Waits between a conflict and the next read (default 20 ms doubling up to 500 ms, jittered). */
  backoff?: BackoffOptions;
  signal?: AbortSignal;
  /** Called after each conflict, with the number of conflicts so far. */
  onConflict?: (conflicts: number) => void;
}

export interface Versioned {
  readonly etag: string;
}

/**
 * `change` may run more than once, each time on the value just read, so it
 * must compute the new value from its argument (and do nothing else that
 * cannot be repeated). Returning undefined writes nothing. A write whose
 * outcome was unknown (UNAVAILABLE, retried) and that did land makes the
 * retry answer ABORTED, and `change` then runs once more on the value it
 * produced; prefer changes that are no-ops the second time (set, not add)
 * where that matters.
 */
export async function readModifyWrite<T extends Versioned, C>(
  read: () => Promise<T | undefined>,
  write: (change: C, etag: string) => Promise<T>,
  change: (current: T | undefined) => C | undefined | Promise<C | undefined>,
  options: ReadModifyWriteOptions = {},
): Promise<T | undefined> {
  const maxAttempts = options.maxAttempts ?? 10;
  const backoff = { initialDelayMs: 20, maxDelayMs: 500, ...options.backoff };
  for (let attempt = 1; ; attempt++) {
    const current = await read();
    const next = await change(current);
    if (next === undefined) return current;
    try {
      // No current value means no etag: the write creates the row unconditionally.
      return await write(next, current?.etag ?? "");
    } catch (err) {
      // ABORTED: another write came first. NOT_FOUND on a conditional write: the row was deleted since.
      const conflict =
        codeOf(err) === grpc.status.ABORTED || (current !== undefined && codeOf(err) === grpc.status.NOT_FOUND);
      if (!conflict || attempt >= maxAttempts) throw err;
      options.onConflict?.(attempt);
      await sleep(backoffDelay(attempt - 1, backoff), options.signal);
    }
  }
}
