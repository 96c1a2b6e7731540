// Runs a closed loop of varying calls from the Node client against the service
// and checks every logged reply's code. Used where each call needs its own key.

import { closedLoop, type ClosedLoopResult } from "../closed-loop.js";
import type { BenchContext } from "../context.js";
import type { FixedCall } from "../fixed-call-load.js";
import { H2GrpcClient } from "../h2-client.js";
import { tallyLog, type LogTally } from "../service-log.js";
import { BenchFailure, withLogTally } from "../validate.js";

export interface NodeLoadOptions {
  connections: number;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  expectStatus: number;
  logCodes: readonly string[];
  /** The call for operation `seq`, and the label its latency is also filed under. */
  next: (seq: number) => { call: FixedCall; label?: string };
  /** Keys whose repeat misses the measured tally counts apart (see LogTally.repeatMissesHot). */
  hotUserIds?: ReadonlySet<string>;
}

export async function nodeLoad(
  ctx: BenchContext,
  o: NodeLoadOptions,
): Promise<{ run: ClosedLoopResult; tally: LogTally; measuredTally: LogTally }> {
  // `tally` covers the whole run (every code is checked); `measuredTally` only
  // what was logged after the warm-up, for hit ratios.
  const client = await H2GrpcClient.connect(ctx.service.baseUrl, o.connections);
  let measuredFrom = 0;
  try {
    const { result, tally } = await withLogTally(ctx.service, o.logCodes, async () => {
      const mark = setTimeout(() => (measuredFrom = ctx.service.logSize()), o.warmupMs);
      try {
        return await closedLoop({
          concurrency: o.concurrency,
          warmupMs: o.warmupMs,
          durationMs: o.durationMs,
          op: async (seq) => {
            const { call, label } = o.next(seq);
            const reply = await client.call(call.path, call.frame, call.headers);
            if (reply.status !== o.expectStatus) {
              throw new BenchFailure(`grpc-status ${reply.status}: ${reply.message}`);
            }
            return label;
          },
        });
      } finally {
        clearTimeout(mark);
      }
    });
    if (result.errors > 0) throw new BenchFailure(`${result.errors} failed calls; first: ${result.firstError}`);
    const measuredTally = tallyLog(ctx.service.logFile, measuredFrom, ctx.service.logSize(), o.hotUserIds);
    return { run: result, tally, measuredTally };
  } finally {
    client.close();
  }
}
