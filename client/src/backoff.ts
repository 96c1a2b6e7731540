// Exponential backoff with jitter, and a sleep that an AbortSignal cuts short.
// Jitter keeps the callers of a replica that just went away from all coming
// back in the same millisecond; the cap keeps a long outage from growing the
// wait past what a caller can reason about.

import { setTimeout as sleepFor } from "node:timers/promises";

export interface BackoffOptions {
  /** The first retry waits between half of this and all of it (ms). */
  initialDelayMs?: number;
  /** No wait is longer than this (ms). */
  maxDelayMs?: number;
}

/**
 * The wait before retry number `attempt` (0 for the first retry): "equal
 * jitter", half of the exponential step fixed and half random, so a retry
 * never comes back at once and never waits more than the cap.
 */
export function backoffDelay(attempt: number, options: Required<BackoffOptions>): number {
  const step = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  return step / 2 + Math.random() * (step / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  try {
    await sleepFor(ms, undefined, { signal });
  } catch (err) {
    // timers/promises rejects with its own AbortError; the caller's reason is what callers expect.
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}
