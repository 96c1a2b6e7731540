// Stampede: N concurrent GetProfile calls for one cold key, split over two
// fresh instances sharing PostgreSQL and Redis. The goal is exactly one
// PostgreSQL read of the key in total, with every call answered.
//
// The count is PostgreSQL's own (scans of `profiles`), so it must start and
// end with no other session on the database: the caller stops the main
// instance and the floors' pool first, and this stops its two instances
// before reading the count.

import pg from "pg";
import { GetProfileRequestSchema, GetProfileResponseSchema } from "../../gen/profile/v1/profile_pb.js";
import { encodeProfile } from "../../src/profiles/cache-codec.js";
import type { ProfileRecord } from "../../src/profiles/records.js";
import type { BenchContext } from "../context.js";
import { decodeUnary, GrpcStatus, requestFrame } from "../grpc-wire.js";
import { H2GrpcClient } from "../h2-client.js";
import { profileId } from "../ids.js";
import { newHistogram } from "../latency.js";
import { measurement, type Measurement } from "../measurement.js";
import { profileTableScans, settledProfileTableScans } from "../pg-query-count.js";
import { tallyLog } from "../service-log.js";
import { sleep, startService } from "../service.js";
import { bearer } from "../tokens.js";

const CONNECTIONS_PER_INSTANCE = 4;
const GET_PROFILE = "/profile.v1.ProfileService/GetProfile";

/**
 * Production replicas are warm; fresh ones run cold JIT code several times
 * slower. Each instance first serves hits on another key, whose cache entry
 * the bench writes itself (with the service's codec) so that no warm-up call
 * reaches PostgreSQL.
 */
async function primeWarmKey(ctx: BenchContext): Promise<string> {
  const id = profileId(ctx.ranges.hot);
  const client = new pg.Client({ connectionString: ctx.dbUrl });
  await client.connect();
  try {
    const { rows } = await client.query<Record<string, unknown>>("SELECT * FROM profiles WHERE user_id = $1", [id]);
    const r = rows[0]!;
    const record: ProfileRecord = {
      userId: String(r.user_id),
      firstName: String(r.first_name),
      lastName: String(r.last_name),
      bio: String(r.bio),
      avatarUrl: String(r.avatar_url),
      phone: String(r.phone),
      createdAt: r.created_at as Date,
      updatedAt: r.updated_at as Date,
      version: Number(r.version),
    };
    await ctx.redis.set(`${ctx.keyPrefix}profile:${id}`, encodeProfile(record), "EX", 600);
  } finally {
    await client.end();
  }
  return id;
}

async function warmUp(ctx: BenchContext, client: H2GrpcClient, warmId: string, calls: number): Promise<void> {
  const frame = requestFrame(GetProfileRequestSchema, { userId: warmId });
  const headers = bearer(ctx.tokens.reader);
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next++ < calls) {
        const reply = await client.call(GET_PROFILE, frame, headers);
        if (reply.status !== GrpcStatus.OK) throw new Error(`warm-up: grpc-status ${reply.status}: ${reply.message}`);
      }
    }),
  );
}

export async function stampede(ctx: BenchContext): Promise<Measurement[]> {
  const n = ctx.options.stampedeRequests;
  const id = profileId(ctx.ranges.stampede);
  await ctx.redis.del(`${ctx.keyPrefix}profile:${id}`);
  const warmId = await primeWarmKey(ctx);
  let before = await settledProfileTableScans(ctx.dbUrl);

  const instances = await Promise.all(
    ["stampede-a", "stampede-b"].map((name) => startService({ name, env: ctx.serviceEnv, logDir: ctx.workDir })),
  );
  let warmupNonHits = 0;
  // Log offsets where the stampede itself starts, so its tallies leave the warm-up out.
  let stampedeFrom = instances.map(() => 0);
  const histogram = newHistogram();
  let ok = 0;
  const failures: string[] = [];
  const etags = new Set<string>();
  let elapsedMs = 0;
  try {
    const clients = await Promise.all(instances.map((s) => H2GrpcClient.connect(s.baseUrl, CONNECTIONS_PER_INSTANCE)));
    try {
      await Promise.all(clients.map((c) => warmUp(ctx, c, warmId, ctx.options.stampedeWarmupCalls)));
      // A warm-up hit that timed out on Redis (breaker open) read PostgreSQL instead; those
      // scans must not count. An idle backend publishes its counts within 10 s.
      stampedeFrom = instances.map((s) => s.logSize());
      const warmTallies = instances.map((s, i) => tallyLog(s.logFile, 0, stampedeFrom[i]!));
      warmupNonHits = warmTallies.reduce((n, t) => n + t.rpcs - (t.cache.hit ?? 0), 0);
      if (warmupNonHits > 0) {
        ctx.say(`  ${warmupNonHits} warm-up calls bypassed the cache; waiting 11 s for their PostgreSQL statistics`);
        await sleep(11_000);
        before = await profileTableScans(ctx.dbUrl);
      }
      const frame = requestFrame(GetProfileRequestSchema, { userId: id });
      const headers = bearer(ctx.tokens.reader);
      const start = performance.now();
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const t0 = performance.now();
          try {
            const reply = await clients[i % 2]!.call(GET_PROFILE, frame, headers);
            if (reply.status !== GrpcStatus.OK) throw new Error(`grpc-status ${reply.status}: ${reply.message}`);
            etags.add(decodeUnary(GetProfileResponseSchema, reply.body).profile?.etag ?? "");
            ok++;
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
    measurement("Stampede", "scenario", "node", n, { requests: ok, errors: failures.length, elapsedMs, histogram }, {
      extra: {
        pgQueries: after - before,
        warmupNonHits,
        instances: instances.length,
        answered: ok,
        failed: failures.length,
        firstFailure: failures[0],
        distinctEtags: etags.size,
        cacheStatusesByInstance: tallies.map((t) => t.cache),
        cacheUnavailableByInstance: tallies.map((t) => t.cacheUnavailable),
      },
      notes: [
        `${n} concurrent calls for one cold key over 2 instances (each warmed with ${ctx.options.stampedeWarmupCalls} hits on another key)`,
        "queries: PostgreSQL's own scan count of profiles",
      ],
    }),
  ];
}
