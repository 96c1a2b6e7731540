// The run's output: a table on stdout and a JSON result file.

import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { GoalResult } from "./goals.js";
import type { Machine } from "./machine.js";
import type { Measurement } from "./measurement.js";

export interface BenchResult {
  startedAt: string;
  command: string;
  machine: Machine;
  settings: Record<string, unknown>;
  measurements: Measurement[];
  goals: GoalResult[];
}

export function renderTable(r: BenchResult): string {
  const m = r.machine;
  const lines = [
    `machine: ${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}`,
    `         ${m.postgres ?? "PostgreSQL ?"}; Redis ${m.redis ?? "?"}; ${m.h2load ?? "no h2load"}; load average at start ${m.loadAverageAtStart}`,
    "",
  ];
  const head = ["", "gen", "in flight", "calls/s", "items/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "calls", "other CPU", "notes"];
  const rows = r.measurements.map((x) => [
    x.name,
    x.generator,
    String(x.concurrency),
    fmt(x.throughput),
    x.itemsPerCall === 1 ? "" : fmt(x.throughput * x.itemsPerCall),
    ms(x.latency.p50),
    ms(x.latency.p90),
    ms(x.latency.p99),
    ms(x.latency.p999),
    String(x.requests),
    x.foreignCpu === undefined ? "" : `${Math.round(x.foreignCpu * 100)}%`,
    extraNote(x),
  ]);
  lines.push(...columns([head, ...rows]));
  lines.push(
    "other CPU: share of the machine's CPU that unrelated processes (not the bench, its children, PostgreSQL or Redis) used during the window",
  );
  lines.push("");
  lines.push(...columns([["scenario", "goal", "measured", "verdict"], ...r.goals.map((g) => [g.scenario, g.goal, g.measured, verdict(g.met)])]));
  return lines.join("\n");
}

export async function writeResult(path: string, r: BenchResult): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(r, null, 2)}\n`);
}

function extraNote(x: Measurement): string {
  const e = x.extra;
  const statuses = e.cacheStatuses as Record<string, number> | undefined;
  const bypass = statuses?.bypass ?? 0;
  const bypassed = bypass > 0 ? `; ${bypass} reads bypassed the cache (Redis timeouts)` : "";
  if (x.rounds !== undefined) return `rounds: ${x.rounds.map(fmt).join(", ")} calls/s${bypassed}`;
  if (bypassed !== "" && !x.name.startsWith("Zipf")) return bypassed.slice(2);
  if (typeof e.pgQueries === "number") return `${e.pgQueries} PG queries, ${e.failed} failed`;
  if (typeof e.cacheHitRatio === "number" && x.name.startsWith("Zipf")) {
    const again =
      typeof e.repeatMisses === "number"
        ? `, ${e.repeatMisses} repeat misses (${String(e.repeatMissesHot)} on the 100 hottest keys)`
        : "";
    return `hit ratio ${(e.cacheHitRatio * 100).toFixed(1)}%${again}${bypassed}`;
  }
  return "";
}

function verdict(met: boolean | null): string {
  return met === null ? "reported" : met ? "MET" : "MISSED";
}

const fmt = (n: number) => (n >= 100 ? String(Math.round(n)) : n.toFixed(1));
const ms = (n: number) => (n >= 10 ? n.toFixed(1) : n.toFixed(3));

function columns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === 0 || i === r.length - 1 || i === 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}
