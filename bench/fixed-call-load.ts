// Load with one fixed request (same path, headers and body every time), from
// h2load when it is installed and from the Node client otherwise. A target and
// its floor always go through the same generator.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { closedLoop } from "./closed-loop.js";
import { probeWindow } from "./contention.js";
import { H2GrpcClient } from "./h2-client.js";
import { runH2load } from "./h2load.js";
import type { Histogram } from "./latency.js";

export type Generator = "h2load" | "node";

export interface FixedCall {
  path: string;
  frame: Buffer;
  headers: Readonly<Record<string, string>>;
}

export interface LoadShape {
  connections: number;
  /** Calls in flight per connection. */
  streams: number;
  warmupMs: number;
  durationMs: number;
}

export interface FixedLoadResult {
  generator: Generator;
  requests: number;
  errors: number;
  elapsedMs: number;
  histogram: Histogram;
  /** h2load only: response DATA bytes, to catch trailers-only (error) replies. */
  dataBytes?: number;
  /** The measured window on the monotonic clock (µs), for matching CPU profile samples. */
  windowUs: { fromUs: number; toUs: number };
  foreignCpu?: number;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

export async function fixedCallLoad(
  generator: Generator,
  baseUrl: string,
  call: FixedCall,
  shape: LoadShape,
  workDir: string,
  expectStatus: number,
): Promise<FixedLoadResult> {
  const startUs = nowUs();
  const windowUs = { fromUs: startUs + shape.warmupMs * 1000, toUs: startUs + (shape.warmupMs + shape.durationMs) * 1000 };
  if (generator === "h2load") {
    const bodyFile = join(workDir, "body.bin");
    await writeFile(bodyFile, call.frame);
    const contention = probeWindow(shape.warmupMs, shape.durationMs);
    const r = await runH2load({
      url: `${baseUrl}${call.path}`,
      bodyFile,
      headers: { "content-type": "application/grpc", te: "trailers", ...call.headers },
      connections: shape.connections,
      streamsPerConnection: shape.streams,
      durationMs: shape.durationMs,
      warmupMs: shape.warmupMs,
      logFile: join(workDir, "h2load.log"),
    });
    return {
      generator,
      requests: r.succeeded,
      errors: r.failed + r.non2xx,
      elapsedMs: r.elapsedMs,
      histogram: r.histogram,
      dataBytes: r.dataBytes,
      windowUs,
      foreignCpu: await contention,
    };
  }
  const client = await H2GrpcClient.connect(baseUrl, shape.connections);
  try {
    const r = await closedLoop({
      concurrency: shape.connections * shape.streams,
      warmupMs: shape.warmupMs,
      durationMs: shape.durationMs,
      op: async () => {
        const reply = await client.call(call.path, call.frame, call.headers);
        if (reply.status !== expectStatus) throw new Error(`grpc-status ${reply.status}: ${reply.message}`);
      },
    });
    return {
      generator,
      requests: r.requests,
      errors: r.errors,
      elapsedMs: r.elapsedMs,
      histogram: r.histogram,
      windowUs,
      foreignCpu: r.foreignCpu,
    };
  } finally {
    client.close();
  }
}
