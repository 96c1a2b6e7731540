// Brings up what every run needs: a seeded database of its own, a Redis key
// prefix of its own, a JWT secret, the service, the bare floor servers, and
// clients for the store floors. Each step registers its undo with the run's
// Cleanup.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import pg from "pg";
import { mintToken } from "../src/auth/mint-token.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { getProfile } from "./calls.js";
import type { Cleanup } from "./cleanup.js";
import { keyRanges, type BenchContext } from "./context.js";
import { startFloorServers } from "./floors/servers.js";
import { H2Client } from "./h2-client.js";
import { h2loadVersion } from "./h2load.js";
import { profileId } from "./ids.js";
import { describeMachine, type Machine } from "./machine.js";
import type { Generator } from "./measurement.js";
import type { BenchOptions } from "./options.js";
import { deleteByPrefix } from "./redis-keys.js";
import { adminQuery, createBenchDatabase, seedProfiles } from "./seed.js";
import { SERVICE_ENTRY, startService } from "./service.js";

export interface Bench {
  ctx: BenchContext;
  machine: Machine;
  seedSeconds: number;
  /** Stops the main instance and closes the floors' pool (before the stampede). */
  stopServiceAndPool(): Promise<void>;
}

export async function openBench(
  options: BenchOptions,
  cleanup: Cleanup,
  say: (m: string) => void,
  cpuProfileDir?: string,
): Promise<Bench> {
  const machine = describeMachine();
  machine.h2load = options.useH2load ? h2loadVersion() : undefined;
  let generator: Generator = "h2load";
  if (machine.h2load === undefined) {
    generator = "node";
    say(
      options.useH2load
        ? "h2load not found (Debian: apt-get install nghttp2-client); fixed calls use the Node client instead"
        : "--no-h2load: fixed calls use the Node client",
    );
  }

  const runId = randomBytes(4).toString("hex");
  const keyPrefix = `bench:${runId}:`;
  const workDir = await mkdtemp(join(tmpdir(), "profile-bench-"));
  cleanup.add("temp files", () => rm(workDir, { recursive: true, force: true }));

  const db = await createBenchDatabase(options.adminDatabaseUrl, `profile_bench_${runId}`);
  cleanup.add(`drop database ${db.name}`, () => db.drop());
  machine.postgres = String((await adminQuery(db.url, "SELECT version() AS v")).rows[0].v).split(" on ")[0];
  say(`seeding ${options.profiles} profiles into ${db.name}`);
  const seedStart = performance.now();
  let reported = 0;
  await seedProfiles(db.url, options.profiles, (done) => {
    if (done - reported >= 200_000 || done === options.profiles) {
      reported = done;
      say(`  ${done} rows`);
    }
  });
  const seedSeconds = (performance.now() - seedStart) / 1000;

  // The service's own client settings (auto-pipelining on), so F-redis matches what a hit pays.
  const redis = createRedisClient({ url: options.redisUrl, cluster: false }) as Redis;
  cleanup.add("Redis client", async () => redis.disconnect());
  if (!(await waitUntilReady(redis, 5000))) throw new Error(`Redis at ${options.redisUrl} is not reachable`);
  cleanup.add(`Redis keys ${keyPrefix}*`, () => deleteByPrefix(redis, keyPrefix));
  machine.redis = /redis_version:(\S+)/.exec(await redis.info("server"))?.[1];

  const secret = randomBytes(32).toString("base64url");
  const token = (subject: string, scopes: string[] = []) => mintToken({ secret, subject, scopes, ttl: "4h" });
  const serviceEnv = {
    DATABASE_URL: db.url,
    REDIS_URL: options.redisUrl,
    REDIS_KEY_PREFIX: keyPrefix,
    JWT_SECRET: secret,
    LOG_LEVEL: "info",
    DB_POOL_SIZE: String(options.dbPoolSize),
    ...options.serviceEnv,
  };
  say(`starting the service (node --import tsx ${SERVICE_ENTRY}${cpuProfileDir === undefined ? "" : " --cpu-prof"})`);
  const service = await startService("service", serviceEnv, workDir, cpuProfileDir);
  const stopService = cleanup.add("service", () => service.stop());
  const pgPool = new pg.Pool({ connectionString: db.url, max: options.dbPoolSize });
  const endPool = cleanup.add("floor pool", () => pgPool.end());

  const ranges = keyRanges(options.profiles);
  const hotId = profileId(ranges.hot);
  const tokens = {
    reader: await token(crypto.randomUUID(), ["profiles:read"]),
    writer: await token(crypto.randomUUID(), ["profiles:read", "profiles:write"]),
    hotUser: await token(hotId),
  };
  // The floors answer with the service's own reply for the hot profile, so they move the same bytes as a hit.
  const client = await H2Client.connect(service.endpoint("grpc").url, 1);
  const reply = await client.call(getProfile("grpc", hotId, tokens.hotUser)).finally(() => client.close());
  say("starting the bare floor servers (node:http2, grpc-js, Connect-ES)");
  const floors = await startFloorServers(reply, workDir, (name, stop) => cleanup.add(name, stop));

  const ctx: BenchContext = {
    options,
    generator,
    window: { warmupMs: options.warmupMs, durationMs: options.durationMs },
    service,
    floors,
    serviceEnv,
    workDir,
    keyPrefix,
    dbUrl: db.url,
    redis,
    pgPool,
    tokens,
    token,
    ranges,
    say,
  };
  return {
    ctx,
    machine,
    seedSeconds,
    stopServiceAndPool: async () => {
      await stopService();
      await endPool();
    },
  };
}
