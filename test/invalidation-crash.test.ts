// A writer that dies between COMMIT and DEL: its change and its outbox event
// are committed, but it never invalidates the cache nor publishes. Another
// replica's relay must do both, so that every key the event touches
// converges to PostgreSQL within the documented bound.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QueryOptions, QueryResult } from "../src/store/database.js";
import { DatabaseDecorator } from "./support/database-decorator.js";
import { grpc } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

// README, "How the cache stays correct": EVENT_RELAY_GRACE_MS + EVENT_RELAY_INTERVAL_MS,
// with slack for a loaded 2-core machine.
const BOUND_MS = 3_000;

/**
 * The real database, except that once armed, a write statement (the one that
 * appends to the outbox) commits and then never returns to its caller: for
 * the writer, time stops right after COMMIT, as if the process had died there.
 */
class DyingAfterCommit extends DatabaseDecorator {
  armed = false;
  readonly committed: number[] = [];

  override async query<R>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    const result = await this.inner.query<R>(text, params, options);
    if (this.armed && text.includes("INSERT INTO profile_events")) {
      this.committed.push(performance.now());
      return new Promise<never>(() => {});
    }
    return result;
  }
}

let dying: DyingAfterCommit;
let writer: TestService;
let other: TestService;

beforeAll(async () => {
  writer = await startTestService({
    label: "crash_after_commit",
    // The dead writer's relay is dead too: only the other replica's may do the work.
    env: { EVENT_RELAY_INTERVAL_MS: "600000", WARMUP_LIMIT: "0" },
    decorateStores: (stores) => {
      dying = new DyingAfterCommit(stores.db);
      return { ...stores, db: dying };
    },
  });
  // The relay's defaults: the bound under test is the one operators get.
  other = await startTestService({
    label: "crash_after_commit_b",
    env: { WARMUP_LIMIT: "0" },
    database: writer.database,
    keyPrefix: writer.keyPrefix,
  });
});
afterAll(async () => {
  await other?.close();
  await writer?.close();
});

const code = (p: Promise<unknown>) =>
  p.then(
    () => grpc.status.OK,
    (err: grpc.ServiceError) => err.code,
  );

describe("a writer that dies between COMMIT and DEL", () => {
  it("has every key its events touch invalidated by another replica's relay, within the bound", async () => {
    const token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
    const [renamed, retuned, deleted] = [randomUserId(), randomUserId(), randomUserId()];
    for (const userId of [renamed, retuned, deleted]) {
      await writer.grpc.unary("updateProfile", { userId, profile: { firstName: "before" } }, token);
      await writer.grpc.unary("updatePreferences", { userId, preferences: { theme: "light", language: "en" } }, token);
      // Cached: the profile and the preferences, in Redis, through the other replica.
      await other.grpc.unary("getProfile", { userId, includePreferences: true }, token);
    }
    const keys = [renamed, retuned, deleted].flatMap((id) => [other.keys.profile(id), other.keys.preferences(id)]);
    await expect.poll(async () => (await other.redis.mget(...keys)).every((v) => v?.startsWith("{"))).toBe(true);

    dying.armed = true;
    // One event of each type: profile_updated, preferences_updated, profile_deleted (both keys).
    const hung = [
      writer.grpc.unary(
        "updateProfile",
        { userId: renamed, profile: { firstName: "after" }, updateMask: { paths: ["first_name"] } },
        token,
      ),
      writer.grpc.unary(
        "updatePreferences",
        { userId: retuned, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
        token,
      ),
      writer.grpc.unary("deleteProfile", { userId: deleted }, token),
    ];
    for (const call of hung) call.catch(() => {});
    await expect.poll(() => dying.committed.length).toBe(3);
    const committedAt = Math.max(...dying.committed);

    const converged = async () => {
      const a = await other.grpc.unary("getProfile", { userId: renamed }, token);
      const b = await other.grpc.unary("getPreferences", { userId: retuned }, token);
      const c = await code(other.grpc.unary("getProfile", { userId: deleted }, token));
      const d = await code(other.grpc.unary("getPreferences", { userId: deleted }, token));
      return (
        a.profile?.firstName === "after" &&
        b.preferences?.theme === "dark" &&
        c === grpc.status.NOT_FOUND &&
        d === grpc.status.NOT_FOUND
      );
    };
    await expect.poll(converged, { timeout: BOUND_MS + 5_000, interval: 50 }).toBe(true);
    const convergedMs = Math.round(performance.now() - committedAt);
    console.log(`Crash between COMMIT and DEL: converged through the other replica's relay in ${convergedMs} ms`);
    expect(convergedMs).toBeLessThan(BOUND_MS);
    // Nothing the dead writer would have sent is missing: every key was deleted, none refilled stale.
    expect(await converged()).toBe(true);
  });
});
