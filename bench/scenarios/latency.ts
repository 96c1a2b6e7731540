// Miss and Write against the sum of their round trips, all measured here at
// the same (low) concurrency: F-rpc + F-pg + 2 × F-redis for a miss, and
// F-rpc + F-write + 2 × F-redis for a write.

import { GetProfileRequestSchema, UpdateProfileRequestSchema } from "../../gen/profile/v1/profile_pb.js";
import { closedLoop, Exhausted } from "../closed-loop.js";
import type { BenchContext } from "../context.js";
import { pgSelectByKey, pgUpdateTransaction, redisGet } from "../floors.js";
import { GrpcStatus, requestFrame } from "../grpc-wire.js";
import { profileId } from "../ids.js";
import { measurement, type Measurement } from "../measurement.js";
import { RPC_FLOOR } from "../rpc-floor.js";
import { bypassNote, hitRatio } from "../service-log.js";
import { bearer } from "../tokens.js";
import { BenchFailure, sampleCall } from "../validate.js";
import { seededRandom } from "../zipf.js";
import { nodeLoad } from "./node-load.js";

const GET_PROFILE = "/profile.v1.ProfileService/GetProfile";
const UPDATE_PROFILE = "/profile.v1.ProfileService/UpdateProfile";

export async function missAndWrite(ctx: BenchContext): Promise<Measurement[]> {
  const o = ctx.options;
  const c = o.latencyConcurrency;
  const at = `@${c}`;
  const shape = { connections: 1, concurrency: c, warmupMs: o.warmupMs, durationMs: o.durationMs };
  const window = { concurrency: c, warmupMs: o.warmupMs, durationMs: o.durationMs };
  const out: Measurement[] = [];

  const rpc = await nodeLoad(ctx, {
    ...shape,
    expectStatus: RPC_FLOOR.expectStatus,
    logCodes: [RPC_FLOOR.logCode],
    next: () => ({ call: RPC_FLOOR.call }),
  });
  out.push(
    measurement(`F-rpc ${at}`, "floor", "node", c, rpc.run, { notes: [RPC_FLOOR.label], serviceWindowUs: rpc.run.windowUs }),
  );

  // F-redis reads the hot profile's cached value: the bytes a hit moves.
  const hotId = profileId(ctx.ranges.hot);
  await sampleCall(
    ctx.service.baseUrl,
    { path: GET_PROFILE, frame: requestFrame(GetProfileRequestSchema, { userId: hotId }), headers: bearer(ctx.tokens.reader) },
    GrpcStatus.OK,
  );
  const redis = await closedLoop({ ...window, op: redisGet(ctx.redis, `${ctx.keyPrefix}profile:${hotId}`) });
  out.push(measurement(`F-redis ${at}`, "floor", "node", c, redis, { notes: ["ioredis GET of a cached profile"] }));

  const anyProfile = seededRandom(11);
  const pgRead = await closedLoop({
    ...window,
    op: pgSelectByKey(ctx.pgPool, () => profileId(Math.floor(anyProfile() * o.profiles))),
  });
  out.push(measurement(`F-pg ${at}`, "floor", "node", c, pgRead, { notes: ["pg SELECT by primary key, uniform ids"] }));

  const [missFrom, missTo] = ctx.ranges.miss;
  const miss = await nodeLoad(ctx, {
    ...shape,
    expectStatus: GrpcStatus.OK,
    logCodes: ["OK"],
    next: (seq) => {
      if (missFrom + seq >= missTo) throw new Exhausted();
      return {
        call: {
          path: GET_PROFILE,
          frame: requestFrame(GetProfileRequestSchema, { userId: profileId(missFrom + seq) }),
          headers: bearer(ctx.tokens.reader),
        },
      };
    },
  });
  // Every key is cold: a hit would mean the scenario measures the wrong thing.
  if ((miss.tally.cache.hit ?? 0) > 0) {
    throw new BenchFailure(`Miss: expected no cache hits, the service logged ${JSON.stringify(miss.tally.cache)}`);
  }
  const missRatio = hitRatio(miss.tally);
  out.push(
    measurement(`Miss ${at}`, "scenario", "node", c, miss.run, {
      extra: { cacheHitRatio: missRatio, cacheStatuses: miss.tally.cache, keysExhausted: miss.run.exhausted },
      notes: ["each call reads a profile never read before", ...bypassNote(miss.tally)],
      serviceWindowUs: miss.run.windowUs,
    }),
  );

  const [writeFrom, writeTo] = ctx.ranges.write;
  const writeTarget = (random: () => number) => () => profileId(writeFrom + Math.floor(random() * (writeTo - writeFrom)));
  const floorTarget = writeTarget(seededRandom(13));
  const pgWrite = await closedLoop({ ...window, op: pgUpdateTransaction(ctx.pgPool, floorTarget) });
  out.push(
    measurement(`F-write ${at}`, "floor", "node", c, pgWrite, { notes: ["pg BEGIN; UPDATE … RETURNING; COMMIT"] }),
  );

  const target = writeTarget(seededRandom(17));
  const headers = bearer(ctx.tokens.writer);
  const write = await nodeLoad(ctx, {
    ...shape,
    expectStatus: GrpcStatus.OK,
    logCodes: ["OK"],
    next: (seq) => ({
      call: {
        path: UPDATE_PROFILE,
        frame: requestFrame(UpdateProfileRequestSchema, {
          userId: target(),
          profile: { firstName: `Write${seq}` },
          updateMask: { paths: ["first_name"] },
        }),
        headers,
      },
    }),
  });
  out.push(
    measurement(`Write ${at}`, "scenario", "node", c, write.run, {
      notes: ["UpdateProfile of one field: commit, invalidate, publish"],
      serviceWindowUs: write.run.windowUs,
    }),
  );
  return out;
}
