// This box is shared: other sessions' builds and test runs take CPU from the
// service, the stores and the load generator, and skew every figure. Each
// measured window therefore records how much of the machine's CPU went to
// processes that are not the bench (this process and its children) and not
// PostgreSQL or Redis, so a contended figure is visible as such.

import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux
const OURS_BY_NAME = new Set(["postgres", "redis-server"]);

interface Proc {
  ppid: number;
  comm: string;
  ticks: number;
}

function readProcs(): Map<number, Proc> {
  const procs = new Map<number, Proc>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return procs; // not Linux
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const fields = stat.slice(close + 2).split(" ");
      // fields[0] is state (stat field 3): ppid is field 4, utime 14, stime 15.
      procs.set(Number(name), { ppid: Number(fields[1]), comm, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // exited meanwhile
    }
  }
  return procs;
}

function foreignTicks(procs: Map<number, Proc>): Map<number, number> {
  const ours = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === process.pid) return true;
      const proc = procs.get(p);
      if (proc === undefined) return false;
      p = proc.ppid;
    }
    return false;
  };
  const out = new Map<number, number>();
  for (const [pid, p] of procs) if (!ours(pid) && !OURS_BY_NAME.has(p.comm)) out.set(pid, p.ticks);
  return out;
}

export interface ContentionProbe {
  /** Share of the machine's CPU (all cores) used by other work during the window, 0..1. */
  finish(): number | undefined;
}

export function startContentionProbe(): ContentionProbe {
  const t0 = performance.now();
  const before = foreignTicks(readProcs());
  return {
    finish() {
      const seconds = (performance.now() - t0) / 1000;
      if (before.size === 0 || seconds <= 0) return undefined;
      let ticks = 0;
      for (const [pid, t] of foreignTicks(readProcs())) ticks += t - (before.get(pid) ?? 0);
      return Math.round((ticks / TICKS_PER_SECOND / (seconds * os.cpus().length)) * 1000) / 1000;
    },
  };
}

/** Probes the window [warmupMs, warmupMs + durationMs) from now; resolves after it ends. */
export function probeWindow(warmupMs: number, durationMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    setTimeout(() => {
      const probe = startContentionProbe();
      setTimeout(() => resolve(probe.finish()), durationMs);
    }, warmupMs);
  });
}
