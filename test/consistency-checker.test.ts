// The consistency checker against a real PostgreSQL and Redis: it reports
// stale values planted behind the service's back (so it can fail), and stays
// at 0 when nothing is wrong, even under racing writes, reads and deletes.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app.js";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { ConsistencyChecker } from "../src/consistency/consistency-checker.js";
import { createLogger } from "../src/log/logger.js";
import { cacheKeys } from "../src/cache/cache-keys.js";
import { Metrics } from "../src/metrics/metrics.js";
import { captureLog } from "./support/captured-log.js";
import { settledCheck } from "./support/consistency.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let svc: TestService;
let sql: pg.Client;
let token: string;

beforeAll(async () => {
  // The relay would finish the events planted below (and DEL the keys) before the checker looks.
  svc = await startTestService({ label: "consistency", env: { WARMUP_LIMIT: "0", EVENT_RELAY_GRACE_MS: "600000" } });
  sql = new pg.Client({ connectionString: svc.database.url });
  await sql.connect();
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  await sql?.end();
  await svc?.close();
});

/** A checker of its own, with its own metrics and a log the test can read. */
function checkerWithLog() {
  const { log, matching, text } = captureLog();
  const metrics = new Metrics();
  const checker = new ConsistencyChecker(svc.app.stores.db, svc.app.stores.cache, svc.keys, metrics, log, {
    intervalMs: 0,
    sampleSize: 10,
    inFlightWindowMs: 5000,
  });
  return { checker, metrics, matching, text };
}

async function writeProfile(userId: string, firstName: string): Promise<number> {
  const res = await svc.grpc.unary("updateProfile", { userId, profile: { firstName, lastName: "Doe" } }, token);
  return Number(res.profile!.etag);
}

/** Reads through the service and waits for the fill (a value or a "no such row" marker) to land. */
async function cached(userId: string): Promise<string> {
  await svc.grpc.unary("getProfile", { userId }, token).catch(() => undefined);
  let raw: string | null = null;
  await expect
    .poll(async () => (raw = await svc.redis.get(svc.keys.profile(userId))) !== null && !raw.startsWith("~lease:"))
    .toBe(true);
  return raw!;
}

/** Events of the user not marked done yet (the writer marks its own in batches, 200 ms apart). */
async function unfinishedEvents(userId: string): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM profile_events WHERE user_id = $1 AND invalidated_at IS NULL",
    [userId],
  );
  return rows[0]!.n;
}

const counterValue = async (metric: Metrics["inconsistencies"], cacheType: string) =>
  (await metric.get()).values.find((v) => v.labels.cache_type === cacheType)?.value ?? 0;

describe("the consistency checker", () => {
  it("reports a stale value planted in Redis, with the user id and versions only", async () => {
    const { checker, metrics, matching, text } = checkerWithLog();
    const id = randomUserId();
    const v1 = await writeProfile(id, "Oldname");
    const oldValue = await cached(id);
    const v2 = await writeProfile(id, "Newname");
    // The service deleted the key; put the old value back behind its back.
    await svc.redis.set(svc.keys.profile(id), oldValue, "EX", 300);

    const report = await settledCheck(checker, [id], "planted stale value");
    expect(report.inconsistencies).toEqual([
      {
        userId: id,
        cacheType: "profile",
        cachedVersion: v1,
        committedVersion: v2,
        behindSeconds: expect.any(Number),
        overdueInvalidation: false,
      },
    ]);
    expect(report.inconsistencies[0]!.behindSeconds).toBeLessThan(60);
    expect(await counterValue(metrics.inconsistencies, "profile")).toBe(1);
    expect(await counterValue(metrics.inconsistencies, "preferences")).toBe(0);
    expect(await counterValue(metrics.consistencyChecks, "profile")).toBeGreaterThanOrEqual(1);
    const histogram = (await metrics.inconsistencyBehind.get()).values.find(
      (v) => v.metricName === "cache_inconsistency_behind_seconds_count" && v.labels.cache_type === "profile",
    );
    expect(histogram?.value).toBe(1);

    const warned = matching("cache inconsistency");
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ user_id: id, cache_type: "profile", cached_version: v1, committed_version: v2 });
    expect(text()).not.toContain("Oldname");
    expect(text()).not.toContain("Newname");
    expect(text()).not.toContain("Doe");
  });

  it("reports a cached 'no such row' for a row created behind the cache's back", async () => {
    const { checker } = checkerWithLog();
    const id = randomUserId();
    await cached(id); // NOT_FOUND, remembered
    const { rows } = await sql.query<{ version: string }>(
      "INSERT INTO profiles (user_id, version) VALUES ($1, nextval('row_version_seq')) RETURNING version::text",
      [id],
    );
    const report = await settledCheck(checker, [id], "row created behind the cache");
    expect(report.inconsistencies).toEqual([
      expect.objectContaining({ userId: id, cachedVersion: null, committedVersion: Number(rows[0]!.version) }),
    ]);
  });

  it("reports a cached value of a row deleted behind the cache's back", async () => {
    const { checker } = checkerWithLog();
    const id = randomUserId();
    const v1 = await writeProfile(id, "Gone");
    await cached(id);
    await sql.query("DELETE FROM profiles WHERE user_id = $1", [id]);
    const report = await settledCheck(checker, [id], "row deleted behind the cache");
    // No deletion event (it was done behind the service's back), so how far behind is unknown.
    expect(report.inconsistencies).toEqual([
      expect.objectContaining({ userId: id, cachedVersion: v1, committedVersion: null, behindSeconds: null }),
    ]);
  });

  it("reports stale preferences, and a value put back after a delete, timed from the delete", async () => {
    const { checker, metrics } = checkerWithLog();
    const id = randomUserId();
    await writeProfile(id, "Both");
    const setTheme = (theme: string) =>
      svc.grpc.unary(
        "updatePreferences",
        { userId: id, preferences: { theme }, updateMask: { paths: ["theme"] } },
        token,
      );
    await setTheme("dark");
    await svc.grpc.unary("getProfile", { userId: id, includePreferences: true }, token);
    const keys = [svc.keys.profile(id), svc.keys.preferences(id)];
    let values: (string | null)[] = [];
    await expect.poll(async () => (values = await svc.redis.mget(keys)).every((v) => v?.startsWith("{"))).toBe(true);
    await setTheme("light");
    await svc.redis.set(keys[1]!, values[1]!, "EX", 600);
    const stalePreferences = await settledCheck(checker, [id], "planted stale preferences");
    expect(stalePreferences.inconsistencies).toEqual([
      expect.objectContaining({ userId: id, cacheType: "preferences", overdueInvalidation: false }),
    ]);
    expect(await counterValue(metrics.inconsistencies, "preferences")).toBe(1);

    await svc.grpc.unary("deleteProfile", { userId: id }, token);
    await svc.redis.set(keys[0]!, values[0]!, "EX", 300);
    const afterDelete = await settledCheck(checker, [id], "value put back after a delete");
    expect(afterDelete.inconsistencies).toEqual([
      expect.objectContaining({
        userId: id,
        cacheType: "profile",
        committedVersion: null,
        behindSeconds: expect.any(Number),
      }),
    ]);
  });

  it("counts nothing for a value newer than PostgreSQL's, or for a key whose write is in flight, until the write is overdue", async () => {
    const { checker } = checkerWithLog();
    const newer = randomUserId();
    const v = await writeProfile(newer, "Ahead");
    const ahead = JSON.parse(await cached(newer)) as Record<string, unknown>;
    await svc.redis.set(svc.keys.profile(newer), JSON.stringify({ ...ahead, version: v + 1000 }), "EX", 300);
    expect(await settledCheck(checker, [newer], "cached newer than committed")).toMatchObject({
      checked: 1,
      inconsistencies: [],
    });

    const pending = randomUserId();
    await writeProfile(pending, "Before");
    const oldValue = await cached(pending);
    await writeProfile(pending, "After");
    await expect.poll(() => unfinishedEvents(pending)).toBe(0);
    await svc.redis.set(svc.keys.profile(pending), oldValue, "EX", 300);
    // An event not done yet: its DEL may still be on its way, so the stale value is excused.
    const { rows } = await sql.query<{ id: string }>(
      "INSERT INTO profile_events (type, user_id) VALUES ('profile_updated', $1) RETURNING id::text",
      [pending],
    );
    expect(await checker.runOnce({ userIds: [pending] })).toMatchObject({
      checked: 0,
      inFlight: 1,
      inconsistencies: [],
    });
    // Past the in-flight window, the invalidation is late and the key stale right now.
    await sql.query("UPDATE profile_events SET created_at = now() - interval '60 seconds' WHERE id = $1", [
      rows[0]!.id,
    ]);
    const overdue = await checker.runOnce({ userIds: [pending] });
    expect(overdue.inconsistencies).toEqual([expect.objectContaining({ userId: pending, overdueInvalidation: true })]);
    await sql.query("UPDATE profile_events SET invalidated_at = now() WHERE id = $1", [rows[0]!.id]);
  });

  it("reports 0 under racing writes, reads and deletes, while comparing keys all along", async () => {
    const { checker } = checkerWithLog();
    const users = Array.from({ length: 12 }, () => randomUserId());
    for (const id of users) await writeProfile(id, "v0");
    const until = performance.now() + 4000;
    const running = () => performance.now() < until;
    const ignoreNotFound = (err: unknown) => {
      if ((err as { code?: number }).code !== 5) throw err;
    };
    const pick = () => users[Math.floor(Math.random() * users.length)]!;
    let writes = 0;
    const writers = [0, 1].map(async () => {
      for (let n = 1; running(); n++) {
        const id = pick();
        await writeProfile(id, `v${n}`);
        await svc.grpc.unary(
          "updatePreferences",
          { userId: id, preferences: { theme: n % 2 ? "dark" : "light" }, updateMask: { paths: ["theme"] } },
          token,
        );
        writes += 2;
      }
    });
    // Deletes and re-creates: the "no such row" marker and deleted rows race too.
    const deleter = (async () => {
      while (running()) {
        const id = users[0]!;
        await svc.grpc.unary("deleteProfile", { userId: id }, token).catch(ignoreNotFound);
        await new Promise((r) => setTimeout(r, 20));
        await writeProfile(id, "again");
        writes += 2;
      }
    })();
    const readers = [0, 1, 2].map(async (lane) => {
      while (running()) {
        if (lane === 2) await svc.grpc.unary("batchGetProfiles", { userIds: [pick(), pick(), pick()] }, token);
        else
          await svc.grpc
            .unary("getProfile", { userId: pick(), includePreferences: lane === 1 }, token)
            .catch(ignoreNotFound);
      }
    });
    const totals = { rounds: 0, checked: 0, inFlight: 0, inconsistencies: [] as unknown[] };
    const checking = (async () => {
      while (running()) {
        const report = await checker.runOnce({ userIds: users });
        totals.rounds++;
        totals.checked += report.checked;
        totals.inFlight += report.inFlight;
        totals.inconsistencies.push(...report.inconsistencies);
      }
    })();
    await Promise.all([...writers, deleter, ...readers, checking]);
    console.log(`Consistency check (racing writes, reads, deletes): ${JSON.stringify({ writes, ...totals })}`);
    expect(writes).toBeGreaterThan(50);
    expect(totals.checked).toBeGreaterThan(100);
    expect(totals.inconsistencies).toEqual([]);
    expect((await settledCheck(checker, users, "after the race")).inconsistencies).toEqual([]);
  }, 30_000);
});

describe("the background rounds (CONSISTENCY_CHECK_INTERVAL_MS)", () => {
  it("are off by default, and take an interval of at least 100 ms", () => {
    expect(svc.app.config.consistency).toEqual({ intervalMs: 0, sampleSize: 10, inFlightWindowMs: 5000 });
    expect(
      loadConfig({ CONSISTENCY_CHECK_INTERVAL_MS: "1000", CONSISTENCY_IN_FLIGHT_WINDOW_MS: "0" }).consistency,
    ).toEqual({ intervalMs: 1000, sampleSize: 10, inFlightWindowMs: 0 });
    expect(() => loadConfig({ CONSISTENCY_CHECK_INTERVAL_MS: "50" })).toThrow(
      new ConfigError("CONSISTENCY_CHECK_INTERVAL_MS", "must be 0 (off) or at least 100, got 50"),
    );
    expect(() => loadConfig({ CONSISTENCY_CHECK_SAMPLE_SIZE: "0" })).toThrow(/CONSISTENCY_CHECK_SAMPLE_SIZE/);
    expect(loadConfig({}).redisMemoryCheckIntervalMs).toBe(60_000);
    expect(() => loadConfig({ REDIS_MEMORY_CHECK_INTERVAL_SECONDS: "0" })).toThrow(
      /REDIS_MEMORY_CHECK_INTERVAL_SECONDS/,
    );
  });

  it("sample recent writes on their own and count what they find", async () => {
    const sampling = await startTestService({
      label: "consistency_sampling",
      env: { WARMUP_LIMIT: "0", CONSISTENCY_CHECK_INTERVAL_MS: "200" },
    });
    try {
      const id = randomUserId();
      await sampling.grpc.unary("updateProfile", { userId: id, profile: { firstName: "old" } }, token);
      await sampling.grpc.unary("getProfile", { userId: id }, token);
      let oldValue: string | null = null;
      await expect
        .poll(async () => (oldValue = await sampling.redis.get(sampling.keys.profile(id)))?.startsWith("{") ?? false)
        .toBe(true);
      await sampling.grpc.unary("updateProfile", { userId: id, profile: { firstName: "new" } }, token);
      await sampling.redis.set(sampling.keys.profile(id), oldValue!, "EX", 300);
      const found = () => counterValue(sampling.app.metrics.inconsistencies, "profile");
      await expect.poll(found, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
      expect(await counterValue(sampling.app.metrics.consistencyChecks, "profile")).toBeGreaterThanOrEqual(1);
    } finally {
      await sampling.close();
    }
  });
});

describe("on the embedded default (PGlite and the in-process cache)", () => {
  it("runs the same query and comparison, and reports a planted stale value", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ps-consistency-"));
    const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: "silent", WARMUP_LIMIT: "0" });
    const app = await createApp({ config, log: createLogger("silent") });
    try {
      const id = randomUserId();
      await app.profiles.updateProfile(id, { firstName: "old" });
      await app.profiles.getProfile(id, false);
      const key = cacheKeys("").profile(id);
      let oldValue: string | null = null;
      await expect
        .poll(async () => (oldValue = (await app.stores.cache.getMany([key]))[0] ?? null)?.startsWith("{") ?? false)
        .toBe(true);
      await app.profiles.updateProfile(id, { firstName: "new" });
      expect((await settledCheck(app.consistency, [id], "embedded, before planting", 0)).inconsistencies).toEqual([]);
      // The in-process store has no plain SET: plant through a lease, as a stale fill would land.
      await app.stores.cache.acquireLeases([key], "~lease:planted", 60_000);
      await app.stores.cache.fillLeased([{ key, lease: "~lease:planted", value: oldValue!, ttlSeconds: 300 }]);
      const report = await settledCheck(app.consistency, [id], "embedded, planted stale value");
      expect(report.inconsistencies).toEqual([expect.objectContaining({ userId: id, cacheType: "profile" })]);
      // The sampling query runs on PGlite too.
      expect((await app.consistency.runOnce()).users).toBeGreaterThanOrEqual(0);
    } finally {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
