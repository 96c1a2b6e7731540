// Stampede: N concurrent GetProfile calls for one cold key, split over two
// fresh instances sharing PostgreSQL and Redis. The goal is exactly one
// PostgreSQL read of the key in total, with every call answered.
//
// The count is PostgreSQL's own (scans of `profiles`), so it must start and
// end with no other session on the database: `stopOthers` stops the main
// instance and the floors' pool, and this stops its two instances before
// reading the count.

import { cacheKeys } from "../../src/cache/cache-keys.js";
import { getProfile } from "../calls.js";
import { sleep } from "../child.js";
import type { BenchContext } from "../context.js";
import { H2Client } from "../h2-client.js";
import { profileId } from "../ids.js";
import { newHistogram } from "../latency.js";
import { measurement, type Measurement } from "../measurement.js";
import { profileTableScans, settledProfileTableScans } from "../pg-query-count.js";
import { tallyLog } from "../service-log.js";
import { startService } from "../service.js";
import { refill } from "./hit.js";

const CONNECTIONS_PER_INSTANCE = 4;

export async function stampede(ctx: BenchContext, stopOthers: () => Promise<void>): Promise<Measurement[]> {
  const n = ctx.options.stampedeRequests;
  const id = profileId(ctx.ranges.stampede);
  await ctx.redis.del(cacheKeys(ctx.keyPrefix).profile(id));
  // Production replicas are warm, and fresh ones run cold JIT code several
  // times slower. So each new instance first serves hits on the hot key, which
  // the main instance caches here, before the baseline is read.
  const warmId = profileId(ctx.ranges.hot);
  await refill(ctx, [warmId]);
  await stopOthers();
  let before = await settledProfileTableScans(ctx.dbUrl);

  const instances = await Promise.all(
    ["stampede-a", "stampede-b"].map((name) => startService(name, ctx.serviceEnv, ctx.workDir)),
  );
  let warmupNonHits = 0;
  // Log offsets where the stampede itself starts, so its tallies leave the warm-up out.
  let stampedeFrom = instances.map(() => 0);
  const histogram = newHistogram();
  const failures: string[] = [];
  let elapsedMs = 0;
  try {
    const clients = await Promise.all(
      instances.map((s) => H2Client.connect(s.endpoint("grpc").url, CONNECTIONS_PER_INSTANCE)),
    );
    try {
      const warm = getProfile("grpc", warmId, ctx.tokens.reader);
      await Promise.all(
        clients.map(async (client) => {
          let next = 0;
          const worker = async () => {
            while (next++ < ctx.options.stampedeWarmupCalls) await client.call(warm);
          };
          await Promise.all(Array.from({ length: 64 }, worker));
        }),
      );
      // A warm-up hit that timed out on Redis read PostgreSQL instead; those scans
      // must not count. An idle backend publishes its counts within 10 s.
      stampedeFrom = instances.map((s) => s.logSize());
      warmupNonHits = instances
        .map((s, i) => tallyLog(s.logFile, 0, stampedeFrom[i]!))
        .reduce((sum, t) => sum + t.rpcs - (t.cache.hit ?? 0), 0);
      if (warmupNonHits > 0) {
        ctx.say(`  ${warmupNonHits} warm-up calls bypassed the cache; waiting 11 s for their PostgreSQL statistics`);
        await sleep(11_000);
        before = await profileTableScans(ctx.dbUrl);
      }
      const call = getProfile("grpc", id, ctx.tokens.reader);
      const start = performance.now();
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const t0 = performance.now();
          try {
            call.expect(await clients[i % 2]!.call(call));
            histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
          } catch (err) {
            failures.push(err instanceof Error ? err.message : String(err));
          }
        }),
      );
      elapsedMs = performance.now() - start;
    } finally {
      for (const c of clients) c.close();
    }
  } finally {
    await Promise.all(instances.map((s) => s.stop()));
  }
  const after = await settledProfileTableScans(ctx.dbUrl);
  const tallies = instances.map((s, i) => tallyLog(s.logFile, stampedeFrom[i]!, s.logSize()));
  return [
    measurement(
      "stampede",
      { requests: n - failures.length, errors: failures.length, elapsedMs, histogram },
      {
        kind: "scenario",
        generator: "node",
        concurrency: n,
        extra: {
          pgQueries: after - before,
          warmupNonHits,
          answered: n - failures.length,
          failed: failures.length,
          firstFailure: failures[0],
          cacheStatusesByInstance: tallies.map((t) => t.cache),
        },
        notes: [
          `${n} concurrent calls for one cold key over 2 instances (each warmed with ${ctx.options.stampedeWarmupCalls} hits on another key)`,
          "queries: PostgreSQL's own scan count of profiles",
        ],
      },
    ),
  ];
}
