// Keeps health in step with PostgreSQL: SERVING while `SELECT 1` answers in
// time, NOT_SERVING while it does not. Redis is not probed on purpose: reads
// fall back to PostgreSQL, so a Redis outage leaves the service serving.
//
// The probe measures PostgreSQL, not this process: it runs on a connection of
// its own (Database.probe), so a saturated pool does not fail it, and its
// timeout does not count time our own event loop was too busy to read the
// answer, so a burst of work here does not make the database look down.

import { withTimeout, type StartTimer } from "../lib/timeout.js";
import type { Database } from "../store/database.js";
import { ServingStatus, type HealthStatus } from "./health.js";

export interface DatabaseProbeOptions {
  intervalMs?: number;
  timeoutMs?: number;
  /** Told when reachability flips (for a log line). */
  onChange?: (reachable: boolean) => void;
}

export interface DatabaseProbe {
  /** Probes once now and applies the result. */
  probe(): Promise<boolean>;
  stop(): void;
}

export function startDatabaseProbe(
  db: Database,
  health: HealthStatus,
  options: DatabaseProbeOptions = {},
): DatabaseProbe {
  const intervalMs = options.intervalMs ?? 5000;
  const timeoutMs = options.timeoutMs ?? 2000;
  let last: boolean | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const probe = async (): Promise<boolean> => {
    const reachable = await answersWithin(db, timeoutMs);
    if (stopped) return reachable;
    health.setAll(reachable ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    if (reachable !== last) options.onChange?.(reachable);
    last = reachable;
    return reachable;
  };

  // A chain of timeouts, not an interval: a slow probe never overlaps the next one.
  const schedule = () => {
    timer = setTimeout(() => {
      // probe() never rejects: a failed query is an unreachable database.
      probe()
        .catch(() => false)
        .finally(() => !stopped && schedule())
        .catch(() => {});
    }, intervalMs);
    timer.unref();
  };
  schedule();

  return {
    probe,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

async function answersWithin(db: Database, timeoutMs: number): Promise<boolean> {
  let settled: boolean | undefined;
  const answer = db.probe().then(
    () => (settled = true),
    () => (settled = false),
  );
  return withTimeout(answer, timeoutMs, () => settled ?? false, loopTime);
}

const STEP_MS = 50;
const WALL_FACTOR = 5;

/**
 * A timer that counts only time the event loop was free to notice an answer.
 * It ticks in small steps and credits each step with at most its own length,
 * so a loop blocked for a second adds one step, not a second. Before it fires
 * it lets pending I/O run once, so an answer already waiting on the socket wins.
 * A loop that stays saturated still gets an answer in bounded time: after
 * `WALL_FACTOR` times the budget of wall time, it fires anyway.
 */
const loopTime: StartTimer = (budgetMs, onExpired) => {
  let step: NodeJS.Timeout | undefined;
  let final: NodeJS.Immediate | undefined;
  let credited = 0;
  const started = performance.now();
  let last = started;
  const tick = () => {
    const now = performance.now();
    credited += Math.min(now - last, STEP_MS);
    last = now;
    if (credited < budgetMs && now - started < budgetMs * WALL_FACTOR) {
      step = setTimeout(tick, Math.min(STEP_MS, budgetMs - credited));
      return;
    }
    final = setImmediate(onExpired);
  };
  step = setTimeout(tick, Math.min(STEP_MS, budgetMs));
  return {
    clear() {
      clearTimeout(step);
      clearImmediate(final);
    },
  };
};
