// The replica that failed to invalidate knows its cache may be stale: it
// reads those keys from PostgreSQL, and the rest from the cache, until a DEL
// of its own lands. It tracks them one by one up to a bound; past it, every
// read it serves goes to PostgreSQL until the outbox says every failed event
// has been invalidated. Either way it never serves a read older than a write
// it acknowledged, while a replica that saw no failure may, until the relay.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CuttableLink } from "./support/cuttable-link.js";
import { PrivateRedis } from "./support/private-redis.js";
import { total } from "./support/private-redis-exercise.js";
import { randomUserId, startTestService, type TestService, type TestServiceOptions } from "./support/service.js";
import { VersionLog } from "./support/staleness.js";
import { mintToken } from "./support/tokens.js";

const USERS = 6;

let redis: PrivateRedis;
let link: CuttableLink;
const started: TestService[] = [];

beforeAll(async () => {
  redis = await PrivateRedis.start();
  link = await CuttableLink.start(redis.port);
});
afterAll(async () => {
  for (const svc of started.reverse()) await svc.close();
  await link?.close();
  await redis?.stop();
});

/** A writer and another replica on one database and prefix, both through the link. */
async function pair(label: string, writerOptions: Partial<TestServiceOptions>, env: Record<string, string>) {
  const writer = await startTestService({
    label,
    redisUrl: link.url,
    ...writerOptions,
    env: { WARMUP_LIMIT: "0", ...env, ...writerOptions.env },
  });
  started.push(writer);
  const other = await startTestService({
    label: `${label}_b`,
    redisUrl: link.url,
    env: { WARMUP_LIMIT: "0", ...env },
    database: writer.database,
    keyPrefix: writer.keyPrefix,
  });
  started.push(other);
  return { writer, other };
}

/** Writes v0 for every user and caches it through `other`; then writes v1 for `failing` while Redis is cut off. */
async function failInvalidations(writer: TestService, other: TestService, log: VersionLog, failing: readonly string[]) {
  for (const id of log.userIds) await log.write(writer, id, 0);
  for (const id of log.userIds) await log.read(other, "other", id);
  const keys = log.userIds.map((id) => other.keys.profile(id));
  await expect.poll(async () => (await other.redis.mget(...keys)).every((v) => v?.includes('"v0"'))).toBe(true);
  link.cut();
  for (const id of failing) await log.write(writer, id, 1);
  await new Promise((r) => setTimeout(r, 300));
  return link.heal();
}

describe("a replica whose DELs failed", () => {
  it("reads those keys from PostgreSQL and the others from the cache, until its relay's DEL lands", async () => {
    // Its relay runs when the test says; nobody else's takes over within the test.
    const { writer, other } = await pair(
      "suspect",
      { env: { EVENT_RELAY_INTERVAL_MS: "600000" } },
      { EVENT_RELAY_GRACE_MS: "600000" },
    );
    const token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
    const users = Array.from({ length: USERS }, () => randomUserId());
    const failing = users.slice(0, 3);
    const log = new VersionLog(users, token);
    await failInvalidations(writer, other, log, failing);

    // Once both replicas read from Redis again (the untouched users are hits), the window is open:
    // Redis still holds v0 for the three users whose DEL failed.
    const hits = () => total(writer, "cacheHits");
    for (const [svc, instance] of [
      [writer, "writer"],
      [other, "other"],
    ] as const) {
      await expect
        .poll(
          async () => {
            const before = await total(svc, "cacheHits");
            await log.read(svc, instance, users[5]!);
            return (await total(svc, "cacheHits")) > before;
          },
          { timeout: 10_000, interval: 100 },
        )
        .toBe(true);
    }
    const before = await hits();
    for (let round = 0; round < 5; round++) {
      for (const id of users) await log.read(writer, "writer", id);
      await log.readBatch(writer, "writer", users);
      for (const id of failing) await log.read(other, "other", id);
    }
    const stillStale = (await other.redis.mget(...failing.map((id) => other.keys.profile(id)))).every((v) =>
      v?.includes('"v0"'),
    );
    expect(stillStale).toBe(true);
    expect(log.stale((r) => r.instance === "writer")).toEqual([]);
    // Only the three healthy keys were served from the cache: 5 rounds of one read and one batch each.
    expect((await hits()) - before).toBe(5 * 2 * (USERS - failing.length));
    // The replica that saw no failure serves the old value until the relay deletes it.
    expect(log.stale((r) => r.instance === "other").length).toBeGreaterThan(0);

    await writer.app.relay.runOnce();
    expect(await other.redis.mget(...failing.map((id) => other.keys.profile(id)))).toEqual([null, null, null]);
    for (const id of failing) expect((await log.read(other, "other", id)).got).toBe(1);
    // And the writer trusts the cache for those keys again.
    await expect
      .poll(async () => {
        const at = await hits();
        for (const id of failing) await log.read(writer, "writer", id);
        return (await hits()) - at;
      })
      .toBe(failing.length);
    expect(log.stale((r) => r.instance === "writer")).toEqual([]);
  }, 30_000);

  it("past the keys it tracks, sends all of its reads to PostgreSQL until the outbox has caught up", async () => {
    // Long enough that the events the writer could not track wait in the outbox while we read.
    const graceMs = 4000;
    const { writer, other } = await pair(
      "overflow",
      { maxTrackedFailures: 2 },
      { EVENT_RELAY_GRACE_MS: String(graceMs) },
    );
    const token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
    const users = Array.from({ length: USERS }, () => randomUserId());
    const log = new VersionLog(users, token);
    // Six failed DELs; the writer tracks two of them.
    const healedAt = await failInvalidations(writer, other, log, users);

    // Within the grace the four untracked events wait in the outbox, and their keys in Redis are stale.
    while (performance.now() < healedAt + graceMs - 1000) {
      for (const id of users) {
        await log.read(writer, "writer", id);
        await log.read(other, "other", id);
      }
    }
    expect(log.stale((r) => r.instance === "writer")).toEqual([]);
    // The other replica saw no failure: it serves the stale keys until the relay deletes them.
    expect(log.stale((r) => r.instance === "other").length).toBeGreaterThan(0);

    // Once the relay has finished every event, the writer trusts the cache again.
    await expect
      .poll(
        async () => {
          const hits = await total(writer, "cacheHits");
          for (const id of users) await log.read(writer, "writer", id);
          return (await total(writer, "cacheHits")) - hits;
        },
        { timeout: graceMs + 5000, interval: 200 },
      )
      .toBe(USERS);
    expect(log.stale((r) => r.instance === "writer")).toEqual([]);
    for (const id of users) expect((await log.read(other, "other", id)).got).toBe(1);
  }, 30_000);
});
