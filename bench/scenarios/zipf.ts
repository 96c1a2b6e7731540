// Zipf (s = 1.0) over every profile, 95% GetProfile and 5% UpdateProfile, with
// the production TTLs, starting from an empty cache. The hit ratio is the
// service's own (its per-RPC log), over the measured window only.

import { getProfile, updateFirstName } from "../calls.js";
import type { BenchContext } from "../context.js";
import { profileId } from "../ids.js";
import { measureRpc } from "../measure.js";
import type { Measurement } from "../measurement.js";
import { deleteByPrefix } from "../redis-keys.js";
import { seededRandom, Zipf } from "../zipf.js";

export const ZIPF_S = 1.0;
export const WRITE_SHARE = 0.05;

export async function zipfMix(ctx: BenchContext): Promise<Measurement[]> {
  const o = ctx.options;
  await deleteByPrefix(ctx.redis, ctx.keyPrefix);
  const zipf = new Zipf(o.profiles, ZIPF_S, seededRandom(23));
  const mix = seededRandom(29);
  const m = await measureRpc(
    {
      id: "zipf",
      kind: "scenario",
      endpoint: ctx.service.endpoint("grpc"),
      generator: "node",
      connections: o.connections,
      concurrency: o.connections * o.streamsPerConnection,
      window: { warmupMs: o.zipfWarmupMs, durationMs: o.zipfDurationMs },
      call: (seq) => {
        const userId = profileId(zipf.next());
        return mix() < WRITE_SHARE
          ? updateFirstName("grpc", userId, `Zipf${seq}`, ctx.tokens.writer)
          : getProfile("grpc", userId, ctx.tokens.reader);
      },
      notes: [
        `s = ${ZIPF_S} over ${o.profiles} profiles, ${WRITE_SHARE * 100}% writes, production TTLs`,
        `cache emptied, then ${o.zipfWarmupMs / 1000} s unmeasured warm-up`,
      ],
    },
    ctx.workDir,
  );
  return [m];
}
