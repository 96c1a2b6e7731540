// The hit path over many warm keys, from the Node client (h2load cannot vary
// the body): a cross-check that the single-key Hit scenario is not flattered
// by one hot key, against F-rpc from the same Node client.

import { BatchGetProfilesRequestSchema, GetProfileRequestSchema } from "../../gen/profile/v1/profile_pb.js";
import type { BenchContext } from "../context.js";
import { GrpcStatus, requestFrame } from "../grpc-wire.js";
import { H2GrpcClient } from "../h2-client.js";
import { profileId } from "../ids.js";
import { interleaved, measurement, type Measurement } from "../measurement.js";
import { RPC_FLOOR } from "../rpc-floor.js";
import { bypassNote, hitRatio } from "../service-log.js";
import { bearer } from "../tokens.js";
import { BenchFailure } from "../validate.js";
import { seededRandom } from "../zipf.js";
import { nodeLoad } from "./node-load.js";

const GET_PROFILE = "/profile.v1.ProfileService/GetProfile";

export async function hitSpread(ctx: BenchContext): Promise<Measurement[]> {
  const o = ctx.options;
  const warm = ctx.ranges.warm;
  await warmKeys(ctx, warm);
  const shape = {
    connections: o.connections,
    concurrency: o.connections * o.streamsPerConnection,
    warmupMs: o.warmupMs,
    durationMs: o.durationMs,
  };

  const floor = async () => {
    const { run } = await nodeLoad(ctx, {
      ...shape,
      expectStatus: RPC_FLOOR.expectStatus,
      logCodes: [RPC_FLOOR.logCode],
      next: () => ({ call: RPC_FLOOR.call }),
    });
    return measurement("F-rpc (node)", "floor", "node", shape.concurrency, run, {
      notes: [RPC_FLOOR.label],
      serviceWindowUs: run.windowUs,
    });
  };

  const frames = Array.from({ length: warm }, (_, i) => requestFrame(GetProfileRequestSchema, { userId: profileId(i) }));
  const headers = bearer(ctx.tokens.reader);
  const random = seededRandom(7);
  const hit = async () => {
    const { run, measuredTally } = await nodeLoad(ctx, {
      ...shape,
      expectStatus: GrpcStatus.OK,
      logCodes: ["OK"],
      next: () => ({ call: { path: GET_PROFILE, frame: frames[Math.floor(random() * warm)]!, headers } }),
    });
    // Every key is warm: a miss would mean the scenario measures the wrong thing.
    if ((measuredTally.cache.miss ?? 0) > 0) {
      throw new BenchFailure(`Hit (node): expected no cache misses, the service logged ${JSON.stringify(measuredTally.cache)}`);
    }
    return measurement(`Hit (node, ${warm} keys)`, "scenario", "node", shape.concurrency, run, {
      extra: { cacheHitRatio: hitRatio(measuredTally), cacheStatuses: measuredTally.cache, warmKeys: warm },
      notes: ["uniform over the warm keys, a profiles:read token", ...bypassNote(measuredTally)],
      serviceWindowUs: run.windowUs,
    });
  };
  return interleaved(o.rounds, [floor, hit]);
}

/** Fills the cache for profiles [0, count) with batch reads. */
async function warmKeys(ctx: BenchContext, count: number): Promise<void> {
  const client = await H2GrpcClient.connect(ctx.service.baseUrl, 1);
  try {
    for (let lo = 0; lo < count; lo += 100) {
      const ids = Array.from({ length: Math.min(100, count - lo) }, (_, i) => profileId(lo + i));
      const reply = await client.call(
        "/profile.v1.ProfileService/BatchGetProfiles",
        requestFrame(BatchGetProfilesRequestSchema, { userIds: ids }),
        bearer(ctx.tokens.reader),
      );
      if (reply.status !== GrpcStatus.OK) throw new BenchFailure(`warming: grpc-status ${reply.status}: ${reply.message}`);
    }
  } finally {
    client.close();
  }
}
