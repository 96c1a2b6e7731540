// WatchProfileEvents across two instances sharing PostgreSQL and Redis.

import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventType } from "../gen/profile/v1/profile_pb.js";
import { Outbox } from "../src/events/outbox.js";
import { appendEvent } from "./support/append-event.js";
import { claimedPosition } from "../src/events/resume-token.js";
import { PgDatabase } from "../src/store/pg-database.js";
import { grpc } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

let a: TestService;
let b: TestService;
let db: PgDatabase;
let writer: string;
let watcherToken: string;

const env = { WATCH_PROGRESS_INTERVAL_SECONDS: "1", EVENT_POLL_INTERVAL_MS: "200" };

beforeAll(async () => {
  a = await startTestService({ label: "watch", env });
  b = await startTestService({ label: "watch_b", env, database: a.database, keyPrefix: a.keyPrefix });
  db = new PgDatabase({ connectionString: a.database.url, max: 4, statementTimeoutMs: 10_000 });
  writer = await mintToken(randomUserId(), { scope: "profiles:write profiles:read" });
  watcherToken = await mintToken("search-indexer", { scope: "profiles:watch" });
});
afterAll(async () => {
  await db?.close();
  await b?.close();
  await a?.close();
});

async function quiet(stream: WatchStream, ms = 300): Promise<void> {
  for (let seen = -1; seen !== stream.received.length;) {
    seen = stream.received.length;
    await new Promise((r) => setTimeout(r, ms));
  }
}

function watch(
  svc: TestService,
  request: Parameters<TestService["grpc"]["stream"]>[0],
  token = watcherToken,
): WatchStream {
  return new WatchStream(svc.grpc.stream(request, token));
}

async function setName(svc: TestService, userId: string, firstName: string) {
  return svc.grpc.unary(
    "updateProfile",
    { userId, profile: { firstName }, updateMask: { paths: ["first_name"] } },
    writer,
  );
}

describe("live events", () => {
  it("starts with a bookmark, and a write on instance A reaches a watcher on instance B", async () => {
    const user = randomUserId();
    const stream = watch(b, { userIds: [user] });
    try {
      await stream.until((s) => s.received.length >= 1, 10_000, "first message");
      expect(stream.received[0]!.kind.case).toBe("bookmark");

      await setName(a, user, "one");
      await a.grpc.unary(
        "updatePreferences",
        { userId: user, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
        writer,
      );
      await a.grpc.unary("deleteProfile", { userId: user }, writer);
      await stream.until((s) => s.events.length >= 3, 10_000, "three events");
      expect(stream.events.map((e) => [e.type, e.userId, e.updatedFields])).toEqual([
        [EventType.PROFILE_UPDATED, user, ["first_name"]],
        [EventType.PREFERENCES_UPDATED, user, ["theme"]],
        [EventType.PROFILE_DELETED, user, []],
      ]);
      const positions = stream.events.map((e) => claimedPosition(e.resumeToken)!);
      expect(
        positions.every(
          (p, i) =>
            i === 0 ||
            p.xid > positions[i - 1]!.xid ||
            (p.xid === positions[i - 1]!.xid && p.id > positions[i - 1]!.id),
        ),
      ).toBe(true);
      expect(stream.events.every((e) => e.eventTime !== undefined && e.eventId !== "")).toBe(true);
    } finally {
      stream.cancel();
    }
  });

  it("repeats bookmarks while idle", async () => {
    const stream = watch(a, { userIds: [randomUserId()] });
    try {
      await stream.until((s) => s.bookmarks.length >= 3, 10_000, "three bookmarks");
      expect(stream.events).toEqual([]);
    } finally {
      stream.cancel();
    }
  });

  it("filters by user and type", async () => {
    const [u1, u2, u3] = [randomUserId(), randomUserId(), randomUserId()];
    const byUser = watch(b, { userIds: [u1, u2] });
    const byType = watch(b, { types: [EventType.PREFERENCES_UPDATED] });
    try {
      await Promise.all([byUser.until((s) => s.received.length > 0), byType.until((s) => s.received.length > 0)]);
      await setName(a, u1, "x");
      await setName(a, u3, "x");
      await a.grpc.unary(
        "updatePreferences",
        { userId: u2, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
        writer,
      );
      await a.grpc.unary(
        "updatePreferences",
        { userId: u3, preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
        writer,
      );
      await byUser.until((s) => s.events.length >= 2);
      await byType.until((s) => s.events.filter((e) => e.userId === u3 || e.userId === u2).length >= 2);
      expect(byUser.events.map((e) => e.userId)).toEqual([u1, u2]);
      expect(byType.events.every((e) => e.type === EventType.PREFERENCES_UPDATED)).toBe(true);
    } finally {
      byUser.cancel();
      byType.cancel();
    }
  });
});

describe("who may watch", () => {
  it("a user may watch only their own events", async () => {
    const me = randomUserId();
    const token = await mintToken(me);
    const own = watch(a, { userIds: [me] }, token);
    try {
      await own.until((s) => s.received.length > 0);
      await a.grpc.unary("updateProfile", { profile: { firstName: "me" } }, token);
      await own.until((s) => s.events.length === 1);
    } finally {
      own.cancel();
    }
    for (const request of [{ userIds: [randomUserId()] }, { userIds: [me, randomUserId()] }, {}]) {
      const denied = watch(a, request, token);
      await denied.until((s) => s.error !== undefined || s.ended).catch(() => {});
      expect(denied.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    }
  });

  it("rejects malformed requests with INVALID_ARGUMENT", async () => {
    for (const request of [
      { userIds: ["nope"] },
      { resumeToken: "garbage!" },
      { types: [EventType.UNSPECIFIED] },
      { resumeToken: Buffer.from("p1:1:x").toString("base64url") },
    ]) {
      const bad = watch(a, request);
      await bad.until((s) => s.error !== undefined || s.ended).catch(() => {});
      expect(bad.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    }
  });
});

describe("resuming", () => {
  it("after a disconnect, delivers exactly the missed events, in order, with no duplicates", async () => {
    const user = randomUserId();
    const first = watch(a, { userIds: [user] });
    await first.until((s) => s.received.length > 0);
    await setName(a, user, "seen-1");
    await setName(b, user, "seen-2");
    await first.until((s) => s.events.length === 2);
    const token = first.lastToken;
    first.cancel();

    for (let i = 1; i <= 5; i++) await setName(i % 2 ? a : b, user, `missed-${i}`);
    const resumed = watch(b, { userIds: [user], resumeToken: token });
    try {
      await resumed.until((s) => s.events.length >= 5, 10_000, "missed events");
      await setName(a, user, "live");
      await resumed.until((s) => s.events.length >= 6, 10_000, "live event");
      expect(resumed.received[0]!.kind.case).toBe("bookmark");
      const seen = [...first.events, ...resumed.events].map((e) => e.eventId);
      expect(new Set(seen).size).toBe(seen.length);
      expect(resumed.events).toHaveLength(6);
      // Commit order: each resumed token is after the previous one.
      const positions = resumed.events.map((e) => claimedPosition(e.resumeToken)!);
      for (let i = 1; i < positions.length; i++) {
        expect(positions[i]!.xid > positions[i - 1]!.xid || positions[i]!.id > positions[i - 1]!.id).toBe(true);
      }
    } finally {
      resumed.cancel();
    }
  });

  it("never skips a transaction that commits after a later-numbered one", async () => {
    const user = randomUserId();
    const live = watch(a, { userIds: [user] });
    await live.until((s) => s.received.length > 0);

    // T1 takes the smaller event id but commits last.
    let commitT1!: () => void;
    const t1Holds = new Promise<void>((r) => (commitT1 = r));
    let t1Inserted!: () => void;
    const t1Ready = new Promise<void>((r) => (t1Inserted = r));
    const t1 = db.transaction(async (tx) => {
      const event = await appendEvent(tx, { type: "profile_updated", userId: user, fields: ["bio"] });
      t1Inserted();
      await t1Holds;
      return event;
    });
    await t1Ready;
    const e2 = await db.transaction((tx) =>
      appendEvent(tx, { type: "profile_updated", userId: user, fields: ["phone"] }),
    );
    a.app.hub.wake();
    // Let the watcher see whatever the hub will show it while T1 is still open.
    await new Promise((r) => setTimeout(r, 600));
    const tokenWhileOpen = live.lastToken;
    const deliveredWhileOpen = live.events.map((e) => e.eventId);
    live.cancel();

    const e1 = await (commitT1(), t1);
    expect(BigInt(e1.eventId)).toBeLessThan(BigInt(e2.eventId));
    const resumed = watch(b, { userIds: [user], resumeToken: tokenWhileOpen });
    try {
      const all = () => [...deliveredWhileOpen, ...resumed.events.map((e) => e.eventId)];
      await resumed.until(() => all().length >= 2, 10_000, "both events");
      await new Promise((r) => setTimeout(r, 300));
      expect(all().sort()).toEqual([e1.eventId, e2.eventId].sort());
    } finally {
      resumed.cancel();
    }
  });

  it("answers FAILED_PRECONDITION for a token older than the retention", async () => {
    const user = randomUserId();
    const stream = watch(a, { userIds: [user] });
    await stream.until((s) => s.received.length > 0);
    await setName(a, user, "old");
    await stream.until((s) => s.events.length === 1);
    const oldToken = stream.received[0]!.kind.case === "bookmark" ? stream.received[0]!.kind.value.resumeToken : "";
    stream.cancel();
    await setName(a, user, "newer");

    // Pruning never passes an unfinished event; other tests here write raw, never-finished rows.
    await db.query("UPDATE profile_events SET invalidated_at = now() WHERE invalidated_at IS NULL");
    // A retention of zero hours prunes everything so far.
    const deleted = await new Outbox(db).prune(0);
    expect(deleted).toBeGreaterThan(0);

    const expired = watch(b, { userIds: [user], resumeToken: oldToken });
    await expired.until((s) => s.error !== undefined || s.ended).catch(() => {});
    expect(expired.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(expired.error?.details).toMatch(/re-read .* watch again without a resume_token/);
  });
});

describe("slow consumers", () => {
  it("cuts off a watcher that cannot keep up with RESOURCE_EXHAUSTED, without hurting the others", async () => {
    const slowSvc = await startTestService({
      label: "watch_slow",
      env: { ...env, WATCH_QUEUE_SIZE: "200" },
      database: a.database,
      keyPrefix: a.keyPrefix,
    });
    const user = randomUserId();
    const slow = new WatchStream(slowSvc.grpc.stream({ userIds: [user] }, watcherToken));
    const fast = new WatchStream(slowSvc.grpc.stream({ userIds: [user] }, watcherToken));
    try {
      await Promise.all([slow.until((s) => s.received.length > 0), fast.until((s) => s.received.length > 0)]);
      slow.call.pause();
      const count = 3000;
      await db.query(
        `INSERT INTO profile_events (type, user_id, updated_fields)
         SELECT 'profile_updated', $1, '{bio}' FROM generate_series(1, $2)`,
        [user, count],
      );
      slowSvc.app.hub.wake();
      await fast.until((s) => s.events.length >= count, 20_000, "all events on the fast watcher");
      // The slow watcher's queue overflowed, so the server let it go.
      await expect.poll(() => slowSvc.app.hub.watcherCount, { timeout: 10_000 }).toBe(1);
      slow.call.resume();
      await slow.until((s) => s.error !== undefined, 10_000, "the slow watcher's error");
      expect(slow.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      // grpc-js may report the status before it has emitted every buffered message.
      await quiet(slow);
      expect(slow.events.length).toBeLessThan(count);

      // It resumes from its last token and gets the rest, with no gap and no duplicate.
      const resumed = new WatchStream(
        slowSvc.grpc.stream({ userIds: [user], resumeToken: slow.lastToken }, watcherToken),
      );
      await resumed.until((s) => slow.events.length + s.events.length >= count, 20_000, "the rest");
      const ids = [...slow.events, ...resumed.events].map((e) => e.eventId);
      expect(new Set(ids).size).toBe(count);
      expect(ids).toEqual(fast.events.map((e) => e.eventId));
      resumed.cancel();
    } finally {
      fast.cancel();
      slow.cancel();
      await slowSvc.close();
    }
  });

  it("frees a cancelled watcher at once", async () => {
    const before = a.app.hub.watcherCount;
    const stream = watch(a, { userIds: [randomUserId()] });
    await stream.until((s) => s.received.length > 0);
    expect(a.app.hub.watcherCount).toBe(before + 1);
    stream.cancel();
    await expect.poll(() => a.app.hub.watcherCount, { timeout: 2000 }).toBe(before);
  });
});

describe("shutdown", () => {
  it("ends each stream with a final bookmark, then UNAVAILABLE", async () => {
    const c = await startTestService({ label: "watch_shutdown", env, database: a.database, keyPrefix: a.keyPrefix });
    const user = randomUserId();
    const stream = new WatchStream(c.grpc.stream({ userIds: [user] }, watcherToken));
    try {
      await stream.until((s) => s.received.length > 0);
      await setName(a, user, "before shutdown");
      await stream.until((s) => s.events.length === 1);
      const before = stream.received.length;
      await c.app.endStreams(2000);
      await stream.until((s) => s.error !== undefined, 5000, "UNAVAILABLE");
      expect(stream.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(stream.received.length).toBeGreaterThan(before);
      expect(stream.received.at(-1)!.kind.case).toBe("bookmark");
    } finally {
      await c.close();
    }
  });
});

describe("buf curl", () => {
  it("consumes the stream", async () => {
    const user = randomUserId();
    const token = await mintToken(user);
    const child = spawn(
      "npx",
      [
        "buf",
        "curl",
        "--schema",
        "proto",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "-H",
        `authorization: Bearer ${token}`,
        "-d",
        JSON.stringify({ user_ids: [user] }),
        `${a.baseUrl}/profile.v1.ProfileService/WatchProfileEvents`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await expect.poll(() => out, { timeout: 20_000 }).toContain("bookmark");
      await a.grpc.unary("updateProfile", { profile: { firstName: "curl" } }, token);
      await expect.poll(() => out, { timeout: 10_000 }).toContain("EVENT_TYPE_PROFILE_UPDATED");
      expect(out).toContain(user);
    } finally {
      child.kill("SIGINT");
    }
  });
});
