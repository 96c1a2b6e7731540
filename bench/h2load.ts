// h2load (Debian nghttp2-client) as the load generator for fixed-body calls:
// a C client, so the generator costs the two cores far less than Node would.
// It counts HTTP statuses only; callers check grpc-status separately.

import { execFile, execFileSync } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { promisify } from "node:util";
import { newHistogram, type Histogram } from "./latency.js";

const run = promisify(execFile);

/** The h2load version line, or undefined when it is not installed. */
export function h2loadVersion(): string | undefined {
  try {
    return execFileSync("h2load", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

export interface H2loadOptions {
  url: string;
  bodyFile: string;
  headers: Readonly<Record<string, string>>;
  connections: number;
  streamsPerConnection: number;
  durationMs: number;
  warmupMs: number;
  /** Where per-request latencies go (h2load's --log-file); deleted afterwards. */
  logFile: string;
}

export interface H2loadResult {
  succeeded: number;
  failed: number;
  non2xx: number;
  /** Response DATA bytes: a trailers-only gRPC error carries none, so this catches silent failures. */
  dataBytes: number;
  elapsedMs: number;
  histogram: Histogram;
}

export async function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  await rm(o.logFile, { force: true }); // h2load appends to an existing log
  const args = [
    "-t1", // one generator thread: the other core is the service's
    `-c${o.connections}`,
    `-m${o.streamsPerConnection}`,
    `-D${Math.round(o.durationMs)}ms`,
    `--warm-up-time=${Math.round(o.warmupMs)}ms`,
    `--log-file=${o.logFile}`,
    "-d",
    o.bodyFile,
    ...Object.entries(o.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
    o.url,
  ];
  const { stdout } = await run("h2load", args, { maxBuffer: 16 * 1024 * 1024 });
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  const traffic = /traffic: .*?, .*? \(\d+\) headers .*?, .*? \((\d+)\) data/.exec(stdout);
  if (requests === null || codes === null || traffic === null) throw new Error(`cannot parse h2load output:\n${stdout}`);

  // Percentiles come from the per-request log (start µs, HTTP status, duration µs);
  // h2load itself reports only min/max/mean/sd.
  const histogram = newHistogram();
  const log = await readFile(o.logFile, "utf8");
  for (const line of log.split("\n")) {
    if (line === "") continue;
    histogram.recordValue(Math.max(1, Number(line.split("\t")[2])));
  }
  await rm(o.logFile, { force: true });
  return {
    succeeded: Number(requests[4]),
    failed: Number(requests[5]) + Number(requests[6]) + Number(requests[7]),
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    dataBytes: Number(traffic[1]),
    // h2load's own req/s divides by the -D window too.
    elapsedMs: o.durationMs,
    histogram,
  };
}
