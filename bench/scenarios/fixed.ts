// Measures one fixed call (a floor or a scenario) with the context's fixed-call
// generator, after a sample call, and checks every logged reply's code.

import type { BenchContext } from "../context.js";
import { fixedCallLoad, type FixedCall } from "../fixed-call-load.js";
import { measurement, type Measurement } from "../measurement.js";
import { bypassNote, hitRatio } from "../service-log.js";
import { BenchFailure, sampleCall, withLogTally } from "../validate.js";

export interface FixedExpectation {
  status: number;
  logCode: string;
  /** Checks the decoded sample reply; throws if it is not what the scenario means to measure. */
  checkReply?: (body: Buffer) => void;
  itemsPerCall?: number;
  notes?: string[];
  /** Reads of warm keys only: a cache miss means the scenario is not measuring what it claims. */
  allCached?: boolean;
}

export async function measureFixedCall(
  ctx: BenchContext,
  name: string,
  kind: Measurement["kind"],
  call: FixedCall,
  expect: FixedExpectation,
): Promise<Measurement> {
  const o = ctx.options;
  const sample = await sampleCall(ctx.service.baseUrl, call, expect.status);
  expect.checkReply?.(sample.body);
  const { result, tally } = await withLogTally(ctx.service, [expect.logCode], () =>
    fixedCallLoad(
      ctx.generator,
      ctx.service.baseUrl,
      call,
      { connections: o.connections, streams: o.streamsPerConnection, warmupMs: o.warmupMs, durationMs: o.durationMs },
      ctx.workDir,
      expect.status,
    ),
  );
  // A trailers-only error reply has no DATA; h2load would still count it as succeeded.
  if (result.dataBytes !== undefined && result.dataBytes < result.requests * sample.body.length) {
    throw new BenchFailure(
      `${name}: ${result.dataBytes} response bytes for ${result.requests} calls of ${sample.body.length} bytes each`,
    );
  }
  if (result.errors > 0) throw new BenchFailure(`${name}: ${result.errors} failed calls`);
  const ratio = hitRatio(tally);
  if (expect.allCached === true && (tally.cache.miss ?? 0) > 0) {
    throw new BenchFailure(`${name}: expected only warm keys, the service logged ${JSON.stringify(tally.cache)}`);
  }
  return measurement(name, kind, result.generator, o.connections * o.streamsPerConnection, result, {
    itemsPerCall: expect.itemsPerCall,
    extra: {
      loggedRpcs: tally.rpcs,
      loggedCodes: tally.codes,
      ...(ratio === undefined ? {} : { cacheHitRatio: ratio, cacheStatuses: tally.cache }),
      replyBytes: sample.body.length,
    },
    notes: [...(expect.notes ?? []), ...bypassNote(tally)],
    serviceWindowUs: result.windowUs,
  });
}
