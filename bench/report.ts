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

export function describeMachine(m: Machine): string {
  return [
    `machine: ${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}`,
    `         ${m.postgres ?? "PostgreSQL ?"}; Redis ${m.redis ?? "?"}; ${m.h2load ?? "no h2load"}`,
    `         load average ${m.loadAverageAtStart} at the start, ${m.loadAverageAtEnd ?? "?"} at the end`,
  ].join("\n");
}

export function renderTable(r: BenchResult): string {
  const head = ["", "gen", "in flight", "calls/s", "rounds", "p50 ms", "p90 ms", "p99 ms", "CPU/call", "other CPU"];
  const rows = r.measurements.map((x) => [
    x.name,
    x.generator,
    String(x.concurrency),
    fmt(x.throughput) + (x.itemsPerCall === 1 ? "" : ` (${fmt(x.throughput * x.itemsPerCall)} items/s)`),
    x.rounds.length === 1 ? "" : x.rounds.map((q) => fmt(q.throughput)).join(", "),
    ms(x.latency.p50),
    ms(x.latency.p90),
    ms(x.latency.p99),
    x.cpuPerCallUs === undefined ? "" : `${x.cpuPerCallUs} µs`,
    x.foreignCpu === undefined ? "" : `${Math.round(x.foreignCpu * 100)}%`,
  ]);
  const verdict = (met: boolean | null) => (met === null ? "reported" : met ? "MET" : "MISSED");
  return [
    describeMachine(r.machine),
    "",
    ...columns([head, ...rows], [2, 3, 5, 6, 7, 8, 9]),
    "calls/s: median over the rounds. CPU/call: the server process's own CPU (user + system) per call.",
    "other CPU: the largest share of the machine that unrelated processes (not the bench, its children,",
    "PostgreSQL or Redis) used in any round's window.",
    "",
    ...columns(
      [["goal", "", "measured", "verdict"], ...r.goals.map((g) => [g.scenario, g.goal, g.measured, verdict(g.met)])],
      [],
    ),
  ].join("\n");
}

export async function writeResult(path: string, r: BenchResult): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(r, null, 2)}\n`);
}

const fmt = (n: number) => (n >= 100 ? String(Math.round(n)) : n.toFixed(1));
const ms = (n: number) => (n >= 10 ? n.toFixed(1) : n.toFixed(3));

function columns(rows: string[][], rightAligned: number[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (rightAligned.includes(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}
