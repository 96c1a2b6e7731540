// CPU time from /proc, over a measured window:
// - the server under test's own CPU, for its CPU per call;
// - "other CPU": the share of the machine that processes which are neither the
//   bench (this process and its children) nor PostgreSQL or Redis used. The box
//   is shared, and other sessions' test runs skew every figure; this shows it.

import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

const TICK_MS = 10; // USER_HZ = 100 on Linux
const STORES = new Set(["postgres", "redis-server"]);

interface Proc {
  ppid: number;
  comm: string;
  ticks: number;
}

function readProc(pid: string): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    // After the command: state (field 3), ppid (4), ..., utime (14), stime (15).
    const fields = stat.slice(close + 2).split(" ");
    return {
      ppid: Number(fields[1]),
      comm: stat.slice(stat.indexOf("(") + 1, close),
      ticks: Number(fields[11]) + Number(fields[12]),
    };
  } catch {
    return undefined; // exited meanwhile, or not Linux
  }
}

/** User + system CPU of one process so far, in ms. */
function processCpuMs(pid: number): number {
  return (readProc(String(pid))?.ticks ?? 0) * TICK_MS;
}

function foreignTicks(): Map<number, number> {
  const procs = new Map<number, Proc>();
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    // not Linux
  }
  for (const name of entries) {
    const p = readProc(name);
    if (p !== undefined) procs.set(Number(name), p);
  }
  const ours = (pid: number) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === process.pid) return true;
      p = procs.get(p)?.ppid ?? 0;
    }
    return false;
  };
  const out = new Map<number, number>();
  for (const [pid, p] of procs) if (!ours(pid) && !STORES.has(p.comm)) out.set(pid, p.ticks);
  return out;
}

export interface WindowCpu {
  /** Share of the machine's CPU (all cores) that other work used, 0..1. */
  foreignCpu?: number;
  /** CPU ms of the process under test within the window. */
  targetCpuMs?: number;
}

/** Starts measuring now; `finish()` ends the window. */
export function cpuWindow(targetPid?: number): { finish(): WindowCpu } {
  const t0 = performance.now();
  const before = foreignTicks();
  const target0 = targetPid === undefined ? 0 : processCpuMs(targetPid);
  return {
    finish() {
      const seconds = (performance.now() - t0) / 1000;
      let ticks = 0;
      for (const [pid, t] of foreignTicks()) ticks += t - (before.get(pid) ?? 0);
      const share = (ticks * TICK_MS) / 1000 / (seconds * os.cpus().length);
      return {
        foreignCpu: before.size === 0 ? undefined : Math.round(share * 1000) / 1000,
        targetCpuMs: targetPid === undefined ? undefined : processCpuMs(targetPid) - target0,
      };
    },
  };
}

/** Measures the window [warmupMs, warmupMs + durationMs) from now; resolves when it ends. */
export function probeWindow(warmupMs: number, durationMs: number, targetPid?: number): Promise<WindowCpu> {
  return new Promise((resolve) => {
    setTimeout(() => {
      const window = cpuWindow(targetPid);
      setTimeout(() => resolve(window.finish()), durationMs);
    }, warmupMs);
  });
}
