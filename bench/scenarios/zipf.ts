// Zipf (s = 1.0) over every profile, 95% GetProfile and 5% UpdateProfile, with
// the production TTLs, starting from an empty cache. The hit ratio is the
// service's own (its per-RPC log), over the measured window only.

import { GetProfileRequestSchema, UpdateProfileRequestSchema } from "../../gen/profile/v1/profile_pb.js";
import type { BenchContext } from "../context.js";
import { GrpcStatus, requestFrame } from "../grpc-wire.js";
import { profileId } from "../ids.js";
import { summarize } from "../latency.js";
import { measurement, type Measurement } from "../measurement.js";
import { deleteByPrefix } from "../redis-keys.js";
import { hitRatio } from "../service-log.js";
import { bearer } from "../tokens.js";
import { seededRandom, Zipf } from "../zipf.js";
import { expectedHitRatios } from "../zipf-model.js";
import { nodeLoad } from "./node-load.js";

/** The service's default PROFILE_CACHE_TTL_SECONDS. */
const PRODUCTION_PROFILE_TTL_SECONDS = 300;

export const ZIPF_S = 1.0;
export const WRITE_SHARE = 0.05;
/** The most popular ranks, whose repeat misses are reported apart: early refresh is for them. */
export const HOT_KEYS = 100;

export async function zipfMix(ctx: BenchContext, writeShare = WRITE_SHARE): Promise<Measurement[]> {
  const o = ctx.options;
  await deleteByPrefix(ctx.redis, ctx.keyPrefix);
  const zipf = new Zipf(o.profiles, ZIPF_S, seededRandom(23));
  const mix = seededRandom(29);
  const reader = bearer(ctx.tokens.reader);
  const writer = bearer(ctx.tokens.writer);
  const concurrency = o.connections * o.streamsPerConnection;
  const { run, measuredTally } = await nodeLoad(ctx, {
    hotUserIds: new Set(Array.from({ length: HOT_KEYS }, (_, rank) => profileId(rank))),
    connections: o.connections,
    concurrency,
    warmupMs: o.zipfWarmupMs,
    durationMs: o.zipfDurationMs,
    expectStatus: GrpcStatus.OK,
    logCodes: ["OK"],
    next: (seq) => {
      const userId = profileId(zipf.next());
      if (mix() < writeShare) {
        return {
          label: "write",
          call: {
            path: "/profile.v1.ProfileService/UpdateProfile",
            frame: requestFrame(UpdateProfileRequestSchema, {
              userId,
              profile: { firstName: `Zipf${seq}` },
              updateMask: { paths: ["first_name"] },
            }),
            headers: writer,
          },
        };
      }
      return {
        label: "read",
        call: {
          path: "/profile.v1.ProfileService/GetProfile",
          frame: requestFrame(GetProfileRequestSchema, { userId }),
          headers: reader,
        },
      };
    },
  });
  const reads = run.byLabel.get("read");
  const writes = run.byLabel.get("write");
  const ttl = Number(ctx.serviceEnv.PROFILE_CACHE_TTL_SECONDS ?? PRODUCTION_PROFILE_TTL_SECONDS);
  const readRate = (reads?.totalCount ?? 0) / (run.elapsedMs / 1000);
  const expected = expectedHitRatios(o.profiles, ZIPF_S, readRate, ttl, o.zipfWarmupMs / 1000, run.elapsedMs / 1000);
  return [
    measurement("Zipf", "scenario", "node", concurrency, run, {
      extra: {
        cacheHitRatio: hitRatio(measuredTally),
        cacheStatuses: measuredTally.cache,
        repeatMisses: measuredTally.repeatMisses,
        repeatMissesHot: measuredTally.repeatMissesHot,
        readLatency: reads === undefined ? undefined : summarize(reads),
        writeLatency: writes === undefined ? undefined : summarize(writes),
        warmupSeconds: o.zipfWarmupMs / 1000,
        expectedHitRatio: { ...expected, model: "Poisson reads per key, writes ignored (see bench/zipf-model.ts)" },
      },
      notes: [
        `s = ${ZIPF_S} over ${o.profiles} profiles, ${writeShare * 100}% writes, TTL ${ttl} s`,
        `cache emptied, then ${o.zipfWarmupMs / 1000} s unmeasured warm-up`,
      ],
      serviceWindowUs: run.windowUs,
    }),
  ];
}
