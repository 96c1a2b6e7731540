// XFetch's effect: Zipf reads (no writes, so that every repeat miss is an
// expiry) with a profile TTL short enough to expire inside the window, on a
// fresh instance without and then with early refresh. Without it, keys miss
// each time they expire; with it, the hot ones are refilled just before.
// Same keys, same seeds, same window.

import type { BenchContext } from "../context.js";
import type { Measurement } from "../measurement.js";
import { startService } from "../service.js";
import { zipfMix } from "./zipf.js";

// Our loads take about a millisecond, so the paper's beta of 1 would refresh only
// in the last few milliseconds of a TTL; 20 widens that to tens of milliseconds.
export const EARLY_REFRESH_BETA = "20";

export async function earlyRefresh(ctx: BenchContext): Promise<Measurement[]> {
  const ttlSeconds = ctx.options.quick ? "1" : "10";
  const out: Measurement[] = [];
  for (const [name, beta] of [
    [`Zipf reads, TTL ${ttlSeconds} s`, "0"],
    [`Zipf reads, TTL ${ttlSeconds} s, early refresh`, EARLY_REFRESH_BETA],
  ] as const) {
    const env = { ...ctx.serviceEnv, PROFILE_CACHE_TTL_SECONDS: ttlSeconds, CACHE_EARLY_REFRESH_BETA: beta };
    const service = await startService({ name: `zipf-beta-${beta}`, env, logDir: ctx.workDir });
    try {
      const [zipf] = await zipfMix({ ...ctx, service, serviceEnv: env }, 0);
      out.push({ ...zipf!, name, notes: [...zipf!.notes, `CACHE_EARLY_REFRESH_BETA=${beta}`] });
    } finally {
      await service.stop();
    }
  }
  return out;
}
