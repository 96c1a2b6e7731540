// A clock for withTimeout (lib/timeout.ts) that bounds someone else's latency
// (Redis) without charging them for our own event loop's lag. A reply that sits unread because this process was busy
// is not a slow Redis; sending reads to PostgreSQL (and a stampede past the
// leases) exactly when the process is busiest would make things worse.
//
// Two measures of lag, neither tied to how long the process has been up (a
// hand-rolled sampler, started lazily, once charged the whole uptime as "lag"
// on the first stall):
// - the call's own: when its request can have left, and how late its own
//   timer fires, which catches the stall it is sitting in right now;
// - the loop's recent lag from perf_hooks.monitorEventLoopDelay, the largest
//   delay in the last one to two seconds, which catches a loop that keeps
//   lagging although this call's timer happened to fire on time.

import { monitorEventLoopDelay, type ELDHistogram } from "node:perf_hooks";
import type { StartTimer } from "../lib/timeout.js";

const RESOLUTION_MS = 10;
const WINDOW_MS = 1000;

let histogram: ELDHistogram | undefined;
let previousWindowMaxNs = 0;

function sampleLoopDelay(): ELDHistogram {
  if (histogram === undefined) {
    // Empty until its first sample: it has no baseline from before it started.
    const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    h.enable();
    setInterval(() => {
      previousWindowMaxNs = h.max;
      h.reset();
    }, WINDOW_MS).unref();
    histogram = h;
  }
  return histogram;
}

/** The largest event loop delay in the current and the previous window, in ms. */
function recentLoopLagMs(): number {
  // Samples are whole intervals: an on-time one is RESOLUTION_MS long.
  return Math.max(0, Math.max(previousWindowMaxNs, sampleLoopDelay().max) / 1e6 - RESOLUTION_MS);
}

/**
 * Calls `onExpired` once the peer has had `ms` to answer:
 * - counted from when the request can have been written: ioredis flushes
 *   auto-pipelined commands in the check phase of the loop turn that issued
 *   them, so a stall before that point is ours, not the peer's;
 * - stretched to `ms + 2 × lag`, lag being the larger of how late this
 *   timer fired and the loop's recent lag: commands queued behind a pipeline
 *   whose reply waited on our loop are written only once that reply is read;
 *   the stretch grows only with the worst lag seen, so it ends;
 * - and only after one more poll phase, so a reply already in the socket wins.
 * At an idle loop a silent peer costs `ms` plus one loop turn.
 */
export const lagTolerantClock: StartTimer = (ms, onExpired) => {
  // Sampling starts with the first call, so the loop's recent lag is known by the first expiry.
  sampleLoopDelay();
  const started = performance.now();
  let sentAt = started;
  let due = started + ms;
  let worstLagMs = 0;
  let timer: NodeJS.Timeout | undefined;
  let final: NodeJS.Immediate | undefined;
  const sent = setImmediate(() => (sentAt = performance.now()));
  const fire = () => {
    const now = performance.now();
    worstLagMs = Math.max(worstLagMs, now - due, recentLoopLagMs());
    const allowed = Math.max(sentAt + ms, started + ms + 2 * worstLagMs);
    if (now < allowed) {
      due = allowed;
      timer = setTimeout(fire, allowed - now);
    } else {
      // Timers run before I/O in a loop turn; the check phase (setImmediate) runs after the poll.
      final = setImmediate(onExpired);
    }
  };
  timer = setTimeout(fire, ms);
  return {
    clear() {
      clearImmediate(sent);
      clearTimeout(timer);
      if (final !== undefined) clearImmediate(final);
    },
  };
};
