// Keeps health in step with PostgreSQL: SERVING while `SELECT 1` answers in
// time, NOT_SERVING while it does not. Redis is not probed on purpose: reads
// fall back to PostgreSQL, so a Redis outage leaves the service serving.

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

export function startDatabaseProbe(db: Database, health: HealthStatus, options: DatabaseProbeOptions = {}): DatabaseProbe {
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
    timer = setTimeout(() => void probe().finally(() => !stopped && schedule()), intervalMs);
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
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([
      db.query("SELECT 1").then(
        () => true,
        () => false,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
