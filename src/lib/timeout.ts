// The one way this codebase bounds a wait: race the work against a timer, and
// clear the timer whichever wins, so no timer outlives its race (a timer left
// behind holds the process open and fires into state that has moved on).
//
// The clock is a parameter, because "how long" differs by whose latency is
// measured: wall time for our own work, or time that does not charge a peer
// for our own event loop's lag (store/event-loop-lag.ts, and the database
// probe's loop-time clock).

/** Starts a timer that calls `onExpired` once; `clear` stops it. */
export type StartTimer = (ms: number, onExpired: () => void) => { clear(): void };

export const wallClock: StartTimer = (ms, onExpired) => {
  const timer = setTimeout(onExpired, ms);
  return { clear: () => clearTimeout(timer) };
};

/**
 * `work`'s outcome, or, once `ms` have passed on `clock`, `late()`'s (a value,
 * or a throw that rejects). Work still running then is left to finish on its
 * own: its late rejection is handled here, never unhandled.
 */
export async function withTimeout<T, L>(
  work: Promise<T>,
  ms: number,
  late: () => L,
  clock: StartTimer = wallClock,
): Promise<T | L> {
  let timer: { clear(): void } | undefined;
  const expired = new Promise<L>((resolve, reject) => {
    timer = clock(ms, () => {
      try {
        resolve(late());
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    timer?.clear();
  }
}
