// h2load (Debian nghttp2-client) as the load generator for fixed calls: a C
// client, so the generator costs the two cores far less than Node would. It
// sees HTTP statuses only; the caller checks the reply separately.

import { execFile, execFileSync } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { protocolHeaders, type Call } from "./calls.js";
import type { LoadRun } from "./closed-loop.js";
import { newHistogram } from "./latency.js";

const run = promisify(execFile);

/** The h2load version line, or undefined when it is not installed. */
export function h2loadVersion(): string | undefined {
  try {
    return execFileSync("h2load", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

export interface H2loadShape {
  connections: number;
  streamsPerConnection: number;
  warmupMs: number;
  durationMs: number;
}

/** A run, plus the response DATA bytes: a trailers-only gRPC error carries none, so this catches silent failures. */
export async function runH2load(
  url: string,
  call: Call,
  shape: H2loadShape,
  workDir: string,
): Promise<LoadRun & { dataBytes: number }> {
  const bodyFile = join(workDir, "h2load-body.bin");
  const logFile = join(workDir, "h2load.log");
  await writeFile(bodyFile, call.body);
  await rm(logFile, { force: true }); // h2load appends to an existing log
  const headers = { ...protocolHeaders(call.protocol), ...call.headers };
  const args = [
    "-t1", // one generator thread: the other core is the server's
    `-c${shape.connections}`,
    `-m${shape.streamsPerConnection}`,
    `-D${Math.round(shape.durationMs)}ms`,
    `--warm-up-time=${Math.round(shape.warmupMs)}ms`,
    `--log-file=${logFile}`,
    "-d",
    bodyFile,
    ...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
    `${url}${call.path}`,
  ];
  const { stdout } = await run("h2load", args, { maxBuffer: 16 * 1024 * 1024 });
  const requests =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      stdout,
    );
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  const traffic = /traffic: .*?, .*? \(\d+\) headers .*?, .*? \((\d+)\) data/.exec(stdout);
  if (requests === null || codes === null || traffic === null)
    throw new Error(`cannot parse h2load output:\n${stdout}`);

  // Percentiles come from the per-request log (start µs, HTTP status, duration µs);
  // h2load itself reports only min/max/mean/sd.
  const histogram = newHistogram();
  for (const line of (await readFile(logFile, "utf8")).split("\n")) {
    if (line !== "") histogram.recordValue(Math.max(1, Number(line.split("\t")[2])));
  }
  await rm(logFile, { force: true });
  return {
    requests: Number(requests[4]),
    errors:
      [5, 6, 7].reduce((n, i) => n + Number(requests[i]), 0) + [2, 3, 4].reduce((n, i) => n + Number(codes[i]), 0),
    firstError: `${requests[0]}; ${codes[0]}`,
    dataBytes: Number(traffic[1]),
    // h2load's own req/s divides by the -D window too.
    elapsedMs: shape.durationMs,
    histogram,
  };
}
