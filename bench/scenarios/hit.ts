// The fixed calls at 64 in flight, all from the same generator with the same
// request bytes (GetProfile of the hot key, with the hot user's token; the
// floors ignore the token): the three bare floor servers, the service's Hit
// over gRPC and over Connect, in alternating rounds. Then Batch, once.

import { cacheKeys } from "../../src/cache/cache-keys.js";
import { batchGetProfiles, getProfile, type Call } from "../calls.js";
import { BATCH_SIZE, fixedLoad, type BenchContext } from "../context.js";
import { sleep } from "../child.js";
import { H2Client } from "../h2-client.js";
import { profileId } from "../ids.js";
import { BenchFailure, measureRpc, type RpcPlan } from "../measure.js";
import { inRounds, type Measurement } from "../measurement.js";
import type { Endpoint } from "../service.js";

export async function fixedCalls(ctx: BenchContext): Promise<Measurement[]> {
  const o = ctx.options;
  const hotId = profileId(ctx.ranges.hot);
  const grpc = getProfile("grpc", hotId, ctx.tokens.hotUser);
  const connect = getProfile("connect", hotId, ctx.tokens.hotUser);
  const refillHot = () => refill(ctx, [hotId]);
  const run = (plan: Pick<RpcPlan, "id" | "kind" | "cache" | "before" | "itemsPerCall">, ep: Endpoint, call: Call) =>
    measureRpc(
      {
        ...plan,
        endpoint: ep,
        call,
        ...fixedLoad(ctx),
      },
      ctx.workDir,
    );
  const hit = { kind: "scenario", cache: "hit", before: refillHot } as const;

  const rows = await inRounds(o.rounds, [
    () => run({ id: "f-http2", kind: "floor" }, ctx.floors.http2, grpc),
    () => run({ id: "f-grpc-js", kind: "floor" }, ctx.floors.grpcJs, grpc),
    () => run({ id: "hit", ...hit }, ctx.service.endpoint("grpc"), grpc),
    () => run({ id: "f-connect", kind: "floor" }, ctx.floors.connect, connect),
    () => run({ id: "hit-connect", ...hit }, ctx.service.endpoint("connect"), connect),
  ]);

  const ids = Array.from({ length: BATCH_SIZE }, (_, i) => profileId(i));
  const batch = await run(
    { id: "batch", ...hit, itemsPerCall: BATCH_SIZE, before: () => refill(ctx, ids) },
    ctx.service.endpoint("grpc"),
    batchGetProfiles("grpc", ids, ctx.tokens.reader),
  );
  return [...rows, batch];
}

/**
 * Caches `ids` afresh, with a full TTL, so that none expires during the run
 * that follows (the rounds together outlast the TTL): drops them, reads them
 * through the service, and waits until the fills have landed.
 */
export async function refill(ctx: BenchContext, ids: string[]): Promise<void> {
  const keys = ids.map(cacheKeys(ctx.keyPrefix).profile);
  await ctx.redis.del(...keys);
  const client = await H2Client.connect(ctx.service.endpoint("grpc").url, 1);
  try {
    const call = batchGetProfiles("grpc", ids, ctx.tokens.reader);
    call.expect(await client.call(call));
  } finally {
    client.close();
  }
  const deadline = Date.now() + 5000;
  while ((await ctx.redis.mget(...keys)).some((v) => v?.startsWith("{") !== true)) {
    if (Date.now() > deadline) throw new BenchFailure(`the service did not cache ${ids.length} profiles within 5 s`);
    await sleep(10);
  }
  // The refill's own log line (a miss) must land before the measured window's log starts.
  await sleep(100);
}
