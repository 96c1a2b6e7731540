// Miss and Write against the sum of their round trips, all measured here at
// the same (low) concurrency: F-rpc + F-pg + 2 × F-redis for a miss, and
// F-rpc + F-write + 2 × F-redis for a write.

import { GetProfileRequestSchema, UpdateProfileRequestSchema } from "../../gen/profile/v1/profile_pb.js";
import { closedLoop, Exhausted, type ClosedLoopResult } from "../closed-loop.js";
import type { BenchContext } from "../context.js";
import { pgSelectByKey, pgUpdateTransaction, redisGet } from "../floors.js";
import { GrpcStatus, requestFrame } from "../grpc-wire.js";
import { profileId } from "../ids.js";
import { interleaved, measurement, type Measurement } from "../measurement.js";
import { RPC_FLOOR } from "../rpc-floor.js";
import { bypassNote } from "../service-log.js";
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

  const rpcFloor = async () => {
    const rpc = await nodeLoad(ctx, {
      ...shape,
      expectStatus: RPC_FLOOR.expectStatus,
      logCodes: [RPC_FLOOR.logCode],
      next: () => ({ call: RPC_FLOOR.call }),
    });
    return measurement(`F-rpc ${at}`, "floor", "node", c, rpc.run, { notes: [RPC_FLOOR.label], serviceWindowUs: rpc.run.windowUs });
  };

  // F-redis reads the hot profile's cached value: the bytes a hit moves. It is
  // cached again before each round, since the rounds outlast its TTL.
  const hotId = profileId(ctx.ranges.hot);
  const redisFloor = async () => {
    await sampleCall(
      ctx.service.baseUrl,
      { path: GET_PROFILE, frame: requestFrame(GetProfileRequestSchema, { userId: hotId }), headers: bearer(ctx.tokens.reader) },
      GrpcStatus.OK,
    );
    const redis = floorRun("F-redis", await closedLoop({ ...window, op: redisGet(ctx.redis, `${ctx.keyPrefix}profile:${hotId}`) }));
    return measurement(`F-redis ${at}`, "floor", "node", c, redis, { notes: ["ioredis GET of a cached profile"] });
  };

  const anyProfile = seededRandom(11);
  const pgFloor = async () => {
    const pgRead = floorRun(
      "F-pg",
      await closedLoop({ ...window, op: pgSelectByKey(ctx.pgPool, () => profileId(Math.floor(anyProfile() * o.profiles))) }),
    );
    return measurement(`F-pg ${at}`, "floor", "node", c, pgRead, { notes: ["pg SELECT by primary key, uniform ids"] });
  };

  // Keys are consumed in order across rounds, so every call is a first read.
  const [missFrom, missTo] = ctx.ranges.miss;
  let nextMiss = missFrom;
  const missStatuses: Record<string, number> = {};
  let missBypassNotes: string[] = [];
  const missScenario = async () => {
    const miss = await nodeLoad(ctx, {
      ...shape,
      expectStatus: GrpcStatus.OK,
      logCodes: ["OK"],
      next: () => {
        if (nextMiss >= missTo) throw new Exhausted();
        return {
          call: {
            path: GET_PROFILE,
            frame: requestFrame(GetProfileRequestSchema, { userId: profileId(nextMiss++) }),
            headers: bearer(ctx.tokens.reader),
          },
        };
      },
    });
    // Every key is cold: a hit would mean the scenario measures the wrong thing.
    if ((miss.tally.cache.hit ?? 0) > 0) {
      throw new BenchFailure(`Miss: expected no cache hits, the service logged ${JSON.stringify(miss.tally.cache)}`);
    }
    for (const [status, n] of Object.entries(miss.tally.cache)) missStatuses[status] = (missStatuses[status] ?? 0) + n;
    missBypassNotes = [...missBypassNotes, ...bypassNote(miss.tally)];
    return measurement(`Miss ${at}`, "scenario", "node", c, miss.run, {
      extra: { keysExhausted: miss.run.exhausted },
      notes: ["each call reads a profile never read before"],
      serviceWindowUs: miss.run.windowUs,
    });
  };

  const [writeFrom, writeTo] = ctx.ranges.write;
  const writeTarget = (random: () => number) => () => profileId(writeFrom + Math.floor(random() * (writeTo - writeFrom)));
  const floorTarget = writeTarget(seededRandom(13));
  const writeFloor = async () => {
    const pgWrite = floorRun("F-write", await closedLoop({ ...window, op: pgUpdateTransaction(ctx.pgPool, floorTarget) }));
    return measurement(`F-write ${at}`, "floor", "node", c, pgWrite, { notes: ["pg BEGIN; UPDATE … RETURNING; COMMIT"] });
  };

  const target = writeTarget(seededRandom(17));
  const headers = bearer(ctx.tokens.writer);
  let writes = 0;
  const writeScenario = async () => {
    const write = await nodeLoad(ctx, {
      ...shape,
      expectStatus: GrpcStatus.OK,
      logCodes: ["OK"],
      next: () => ({
        call: {
          path: UPDATE_PROFILE,
          frame: requestFrame(UpdateProfileRequestSchema, {
            userId: target(),
            profile: { firstName: `Write${writes++}` },
            updateMask: { paths: ["first_name"] },
          }),
          headers,
        },
      }),
    });
    return measurement(`Write ${at}`, "scenario", "node", c, write.run, {
      notes: ["UpdateProfile of one field: commit, invalidate, publish"],
      serviceWindowUs: write.run.windowUs,
    });
  };

  // Alternating rounds: drift on a shared machine (CPU placement, a neighbour)
  // hits every floor and scenario alike instead of whichever ran at the time.
  const out = await interleaved(o.rounds, [rpcFloor, redisFloor, pgFloor, missScenario, writeFloor, writeScenario]);
  const miss = out[3]!;
  const lookups = Object.values(missStatuses).reduce((a, b) => a + b, 0);
  miss.extra = {
    ...miss.extra,
    keysExhausted: nextMiss >= missTo,
    cacheStatuses: missStatuses,
    cacheHitRatio: lookups === 0 ? undefined : (missStatuses.hit ?? 0) / lookups,
  };
  miss.notes = [...miss.notes, ...missBypassNotes];
  return out;
}

/** A floor whose operations failed measured something else: stop rather than print it. */
function floorRun(name: string, run: ClosedLoopResult): ClosedLoopResult {
  if (run.errors > 0) throw new BenchFailure(`${name}: ${run.errors} operations failed, the first with: ${run.firstError ?? "?"}`);
  return run;
}
