// A busy pool is not a down database. A call that finds every connection busy
// for as long as it may wait gets RESOURCE_EXHAUSTED (not UNAVAILABLE "the
// database is unavailable"), and the health probe keeps answering, on a
// connection of its own, even while the pool is saturated or our own event
// loop is stalled.

import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { userLockKey } from "../src/events/outbox.js";
import { startDatabaseProbe } from "../src/server/database-probe.js";
import { HealthStatus, ServingStatus } from "../src/server/health.js";
import { PgDatabase } from "../src/store/pg-database.js";
import { grpc } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { waitingOnLocks } from "./support/locks.js";

const SERVICE = "profile.v1.ProfileService";

let svc: TestService;
let blocker: pg.Client;
let token: string;

beforeAll(async () => {
  svc = await startTestService({
    label: "pool_isolation",
    env: { DB_POOL_SIZE: "2", DB_STATEMENT_TIMEOUT_MS: "20000" },
  });
  blocker = new pg.Client({ connectionString: svc.database.url });
  await blocker.connect();
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  await blocker?.end();
  await svc?.close();
});

describe("a saturated pool", () => {
  it("answers RESOURCE_EXHAUSTED, not UNAVAILABLE, and serves again once connections free up", async () => {
    const stuckUser = randomUserId();
    // Hold the per-user write lock, so writes to that user hold both pool connections while they wait.
    await blocker.query(`SELECT pg_advisory_lock(${userLockKey("$1")})`, [stuckUser]);
    const stuck = [1, 2].map((i) =>
      svc.grpc.unary("updateProfile", { userId: stuckUser, profile: { firstName: `w${i}` } }, token).then(
        () => grpc.status.OK,
        (err: grpc.ServiceError) => err.code,
      ),
    );
    try {
      await expect.poll(() => waitingOnLocks(blocker), { timeout: 10_000 }).toBe(2);
      const err = await svc.grpc.unary("getProfile", { userId: randomUserId() }, token).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(err?.details).toMatch(/connection is busy/);
    } finally {
      await blocker.query(`SELECT pg_advisory_unlock(${userLockKey("$1")})`, [stuckUser]);
    }
    expect(await Promise.all(stuck)).toEqual([grpc.status.OK, grpc.status.OK]);
    const read = await svc.grpc.unary("getProfile", { userId: stuckUser }, token);
    expect(read.profile?.firstName).toMatch(/^w[12]$/);
  });
});

describe("the health probe", () => {
  const healthy = () => new PgDatabase({ connectionString: svc.database.url, max: 2, statementTimeoutMs: 20_000 });

  it("keeps answering SERVING while every pool connection is busy", async () => {
    const db = healthy();
    const health = new HealthStatus([SERVICE]);
    const probe = startDatabaseProbe(db, health, { intervalMs: 60_000, timeoutMs: 1000 });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const holders = [1, 2].map(() => db.withConnection(() => held));
    try {
      await new Promise((r) => setTimeout(r, 100));
      const started = performance.now();
      expect(await probe.probe()).toBe(true);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(health.get(SERVICE)).toBe(ServingStatus.SERVING);
    } finally {
      release();
      await Promise.all(holders);
      probe.stop();
      await db.close();
    }
  });

  it("does not count time its own event loop was blocked as PostgreSQL's", async () => {
    const db = healthy();
    const health = new HealthStatus([SERVICE]);
    const probe = startDatabaseProbe(db, health, { intervalMs: 60_000, timeoutMs: 200 });
    try {
      expect(await probe.probe()).toBe(true); // connected
      const answer = probe.probe();
      // A burst of our own work: the loop is busy for longer than the probe's timeout.
      const until = performance.now() + 600;
      while (performance.now() < until);
      expect(await answer).toBe(true);
      expect(health.get(SERVICE)).toBe(ServingStatus.SERVING);
    } finally {
      probe.stop();
      await db.close();
    }
  });
});
