// The latency goals, all at one call in flight from the Node client, in
// alternating rounds: Hit against F-grpc-js + F-redis, Miss against
// F-grpc-js + F-pg + 2 × F-redis, and Write against F-grpc-js + F-write +
// 2 × F-redis. At 64 in flight each term would mostly be queueing.

import { cacheKeys } from "../../src/cache/cache-keys.js";
import { getProfile, updateFirstName } from "../calls.js";
import { Exhausted } from "../closed-loop.js";
import type { BenchContext } from "../context.js";
import { profileId } from "../ids.js";
import { measureOp, measureRpc, type RpcPlan } from "../measure.js";
import { inRounds, type Measurement } from "../measurement.js";
import { pgSelectByKey, pgUpdateTransaction, redisGet } from "../store-floors.js";
import { seededRandom } from "../zipf.js";
import { refill } from "./hit.js";

export async function latency(ctx: BenchContext): Promise<Measurement[]> {
  const o = ctx.options;
  const c = o.latencyConcurrency;
  const w = ctx.window;
  const run = (plan: Pick<RpcPlan, "id" | "kind" | "endpoint" | "call" | "cache" | "before">) =>
    measureRpc({ ...plan, generator: "node", connections: 1, concurrency: c, window: w }, ctx.workDir);
  const service = ctx.service.endpoint("grpc");
  const hotId = profileId(ctx.ranges.hot);
  const hot = getProfile("grpc", hotId, ctx.tokens.hotUser);

  // Keys are consumed in order across rounds, so every call is a first read.
  const [missFrom, missTo] = ctx.ranges.miss;
  let nextMiss = missFrom;
  const miss = () => {
    if (nextMiss >= missTo) throw new Exhausted();
    return getProfile("grpc", profileId(nextMiss++), ctx.tokens.reader);
  };
  const [writeFrom, writeTo] = ctx.ranges.write;
  const writeTarget = (random: () => number) => () =>
    profileId(writeFrom + Math.floor(random() * (writeTo - writeFrom)));
  const scenarioTarget = writeTarget(seededRandom(17));
  const floorTarget = writeTarget(seededRandom(13));
  const write = (seq: number) => updateFirstName("grpc", scenarioTarget(), `Write${seq}`, ctx.tokens.writer);
  const anyProfile = seededRandom(11);

  return inRounds(o.rounds, [
    () => run({ id: "f-grpc-js@1", kind: "floor", endpoint: ctx.floors.grpcJs, call: hot }),
    () =>
      run({
        id: "hit@1",
        kind: "scenario",
        endpoint: service,
        call: hot,
        cache: "hit",
        before: () => refill(ctx, [hotId]),
      }),
    // The hot profile's cached value, just refilled: the bytes a hit moves.
    () =>
      measureOp("f-redis@1", c, w, redisGet(ctx.redis, cacheKeys(ctx.keyPrefix).profile(hotId)), [
        "ioredis GET of a cached profile",
      ]),
    () =>
      measureOp(
        "f-pg@1",
        c,
        w,
        pgSelectByKey(ctx.pgPool, () => profileId(Math.floor(anyProfile() * o.profiles))),
        ["pg SELECT by primary key, prepared, uniform ids"],
      ),
    () => run({ id: "miss@1", kind: "scenario", endpoint: service, call: miss, cache: "miss" }),
    () =>
      measureOp("f-write@1", c, w, pgUpdateTransaction(ctx.pgPool, floorTarget), [
        "pg BEGIN; UPDATE … RETURNING; COMMIT",
      ]),
    () => run({ id: "write@1", kind: "scenario", endpoint: service, call: write }),
  ]);
}
