// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): self time by function
// and by where the code lives (our src/, each npm package, Node internals,
// GC), plus inclusive time of selected frames.
// Usage: tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--top N] [--inclusive REGEX]

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
  /** Share of busy time (idle excluded). */
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  byFunction: SelfTime[];
  byLocation: SelfTime[];
  /** Time in a frame and everything it called, for frames matching the `inclusive` pattern. */
  inclusive: SelfTime[];
}

/**
 * Frames whose inclusive time answers "what does this feature cost": per-RPC
 * logging, JWT checks, the per-call AbortControllers, metrics, Redis, protobuf.
 */
export const DEFAULT_INCLUSIVE =
  /^(LOG|redact|isoTime|jwtVerify|verify|abort|DOMException|observe|sendCommand|toBinary|fromBinary|create|decodeProfile|profileToProto|getMany|read|get|getProfile) (src\/|pino|@pinojs|jose|node:abort|node:per_context|prom-client|ioredis|@bufbuild\/protobuf\/dist\/esm\/(to|from)-binary|@bufbuild\/protobuf\/dist\/esm\/create)/;

/** A window in the system's monotonic clock (µs), which V8's profile timestamps share. */
export interface Window {
  fromUs: number;
  toUs: number;
}

export function summarizeProfile(
  profile: CpuProfile,
  top = 25,
  windows?: readonly Window[],
  inclusive: RegExp = DEFAULT_INCLUSIVE,
): ProfileSummary {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (windows !== undefined && !windows.some((w) => t >= w.fromUs && t <= w.toUs)) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });

  const fn = new Map<string, number>();
  const loc = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const frame = byNode.get(id)!.callFrame;
    total += us;
    if (frame.functionName === "(idle)") {
      idle += us;
      continue;
    }
    const where = location(frame.url);
    const name = frameName(frame);
    fn.set(name, (fn.get(name) ?? 0) + us);
    loc.set(where, (loc.get(where) ?? 0) + us);
  }
  const busy = total - idle;

  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    if (byNode.get(id)!.callFrame.functionName === "(idle)") continue;
    const counted = new Set<string>(); // recursion must not count a sample twice
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = frameName(byNode.get(cur)!.callFrame);
      if (counted.has(name) || !inclusive.test(name)) continue;
      counted.add(name);
      incl.set(name, (incl.get(name) ?? 0) + us);
    }
  }
  const rank = (m: Map<string, number>, n: number): SelfTime[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, share: Math.round((us / busy) * 1000) / 10 }));
  return {
    totalMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    busyMs: Math.round(busy / 1000),
    byFunction: rank(fn, top),
    byLocation: rank(loc, top),
    inclusive: rank(incl, top),
  };
}

function frameName(frame: CallFrame): string {
  return `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ""}`;
}

/** Where code lives: an npm package, our own file, a Node internal, or a V8 pseudo-frame. */
function location(url: string): string {
  if (url === "") return "(V8: gc, program, native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return `npm:${pkg[1]}`;
  // node:internal/http2/core → node:http2, node:internal/crypto/util → node:crypto, node:events → node:events
  if (url.startsWith("node:")) {
    const parts = url.slice(5).split("/");
    return `node:${parts[0] === "internal" && parts.length > 2 ? parts[1] : parts[parts.length - 1]}`;
  }
  const own = /\/(src|gen|bench)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url;
}

function shortUrl(url: string): string {
  return url
    .replace(/^file:\/\/.*?\/node_modules\//, "")
    .replace(/^file:\/\/.*?\/(src|gen|bench)\//, "$1/")
    .replace(/^node:internal\//, "node:");
}

export function renderSummary(s: ProfileSummary): string {
  const lines = [
    `profile: ${s.totalMs} ms sampled, ${s.idleMs} ms idle, ${s.busyMs} ms busy; shares are of busy time`,
    "",
    "self time by location:",
    ...s.byLocation.map((x) => `  ${x.share.toFixed(1).padStart(5)}%  ${String(x.ms).padStart(8)} ms  ${x.name}`),
    "",
    "self time by function:",
    ...s.byFunction.map((x) => `  ${x.share.toFixed(1).padStart(5)}%  ${String(x.ms).padStart(8)} ms  ${x.name}`),
    "",
    "inclusive time of selected frames (a frame and all it calls):",
    ...s.inclusive.map((x) => `  ${x.share.toFixed(1).padStart(5)}%  ${String(x.ms).padStart(8)} ms  ${x.name}`),
  ];
  return lines.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write("usage: tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--top N] [--inclusive REGEX]\n");
    process.exit(2);
  }
  const arg = (flag: string) => {
    const at = process.argv.indexOf(flag);
    return at > 0 ? process.argv[at + 1] : undefined;
  };
  const top = Number(arg("--top") ?? 25);
  const inclusive = arg("--inclusive");
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const summary = summarizeProfile(profile, top, undefined, inclusive === undefined ? undefined : new RegExp(inclusive));
  process.stdout.write(`${renderSummary(summary)}\n`);
}
