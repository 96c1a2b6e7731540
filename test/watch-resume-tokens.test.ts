// Resume tokens that cannot be honoured are refused: a token from another
// database, from a copy of this one, from a dump restored into a new cluster,
// or ahead of the event log gets FAILED_PRECONDITION (re-read, then watch
// again), never a stream that silently skips events. Garbage and hand-edited
// tokens stay INVALID_ARGUMENT. Old `p1:` tokens are honoured for one release.

import { execFileSync } from "node:child_process";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimedPosition, ResumeTokens } from "../src/events/resume-token.js";
import { grpc } from "./support/grpc-client.js";
import { PrivatePostgres } from "./support/private-postgres.js";
import { adminQuery, createTestDatabase, uniqueName } from "./support/servers.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

const env = { WATCH_PROGRESS_INTERVAL_SECONDS: "1", EVENT_POLL_INTERVAL_MS: "200" };
const REWATCH = /re-read .* watch again without a resume_token/;

let a: TestService;
let other: TestService;
let writer: string;
let watcher: string;

beforeAll(async () => {
  a = await startTestService({ label: "tokens_a", env });
  other = await startTestService({ label: "tokens_other", env });
  writer = await mintToken(randomUserId(), { scope: "profiles:write profiles:read" });
  watcher = await mintToken("token-tests", { scope: "profiles:watch" });
});
afterAll(async () => {
  await other?.close();
  await a?.close();
});

function watch(svc: TestService, request: Parameters<TestService["grpc"]["stream"]>[0]): WatchStream {
  return new WatchStream(svc.grpc.stream(request, watcher));
}

async function setName(svc: TestService, userId: string, firstName: string): Promise<void> {
  await svc.grpc.unary("updateProfile", { userId, profile: { firstName } }, writer);
}

/** A bookmark token for `user` on `svc`, then one write to `user` that a resume from it must deliver. */
async function tokenBeforeAWrite(svc: TestService, user: string): Promise<string> {
  const stream = watch(svc, { userIds: [user] });
  await stream.until((s) => s.received.length > 0, 10_000, "a bookmark");
  const token = stream.lastToken;
  stream.cancel();
  await setName(svc, user, "after the token");
  return token;
}

/** How a watch with this token starts: its first event's user, or the status it was refused with. */
async function resumeOutcome(svc: TestService, user: string, resumeToken: string) {
  const stream = watch(svc, { userIds: [user], resumeToken });
  try {
    await stream.until((s) => s.error !== undefined || s.events.length > 0, 10_000, "an event or an error");
    return { code: stream.error?.code, details: stream.error?.details ?? "", events: stream.events.length };
  } finally {
    stream.cancel();
  }
}

describe("tokens from elsewhere", () => {
  it("refuses a token from another database with FAILED_PRECONDITION", async () => {
    const user = randomUserId();
    const token = await tokenBeforeAWrite(a, user);
    await setName(other, user, "a write the foreign position knows nothing of");
    const outcome = await resumeOutcome(other, user, token);
    expect(outcome.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(outcome.details).toMatch(/another event log/);
    expect(outcome.details).toMatch(REWATCH);
    // The same token still resumes where it came from.
    expect(await resumeOutcome(a, user, token)).toMatchObject({ code: undefined, events: 1 });
  });

  it("refuses it on a copy of the database, and still honours it on the original after a restart", async () => {
    const original = await createTestDatabase("tokens_original");
    const copyName = `ps_test_${uniqueName("tokens_copy")}`;
    const user = randomUserId();
    try {
      const first = await startTestService({ label: "tokens_original", env, database: original });
      const token = await tokenBeforeAWrite(first, user);
      await first.close();

      // A copy next to the original, as a restore into a new database of the same cluster makes.
      await adminQuery(`CREATE DATABASE "${copyName}" TEMPLATE "${original.name}"`);
      const copyUrl = new URL(original.url);
      copyUrl.pathname = `/${copyName}`;
      const copy = await startTestService({
        label: "tokens_copy",
        env,
        database: { url: copyUrl.toString(), name: copyName, drop: async () => {} },
      });
      try {
        const outcome = await resumeOutcome(copy, user, token);
        expect(outcome.code).toBe(grpc.status.FAILED_PRECONDITION);
        expect(outcome.details).toMatch(/another event log/);
      } finally {
        await copy.close();
      }

      const again = await startTestService({ label: "tokens_original", env, database: original });
      try {
        expect(await resumeOutcome(again, user, token)).toMatchObject({ code: undefined, events: 1 });
      } finally {
        await again.close();
      }
    } finally {
      await adminQuery(`DROP DATABASE IF EXISTS "${copyName}" WITH (FORCE)`);
      await original.drop();
    }
  });

  it("refuses it after a dump is restored into a new cluster, whose transaction ids start again", async () => {
    const source = await createTestDatabase("tokens_dumped");
    const fresh = await PrivatePostgres.start();
    const user = randomUserId();
    try {
      const before = await startTestService({ label: "tokens_dumped", env, database: source });
      const token = await tokenBeforeAWrite(before, user);
      await before.close();

      const dump = execFileSync("pg_dump", ["--no-owner", "--dbname", source.url], { maxBuffer: 64 << 20 });
      execFileSync("psql", ["--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", fresh.url], {
        input: dump,
        stdio: ["pipe", "ignore", "pipe"],
      });
      const restored = await startTestService({
        label: "tokens_restored",
        env,
        database: { url: fresh.url, name: "postgres", drop: async () => {} },
      });
      try {
        // The new cluster numbers its transactions from the start, far below the token's position:
        // a watch resumed from it would skip every new event until the counter caught up.
        const live = watch(restored, { userIds: [user] });
        await live.until((s) => s.received.length > 0, 10_000, "a bookmark");
        expect(claimedPosition(live.lastToken)!.xid).toBeLessThan(claimedPosition(token)!.xid);
        live.cancel();

        await setName(restored, user, "after the restore");
        const outcome = await resumeOutcome(restored, user, token);
        expect(outcome.code).toBe(grpc.status.FAILED_PRECONDITION);
        expect(outcome.details).toMatch(REWATCH);
      } finally {
        await restored.close();
      }
    } finally {
      await fresh.destroy();
      await source.drop();
    }
  }, 120_000);
});

describe("tokens ahead of the event log", () => {
  it("refuses a token (with a valid MAC) whose position is ahead of the log", async () => {
    const client = new pg.Client({ connectionString: a.database.url });
    await client.connect();
    let identity: { log_id: Buffer; key: Buffer; xid: string };
    try {
      identity = (
        await client.query<{ log_id: Buffer; key: Buffer; xid: string }>(
          "SELECT log_id, key, pg_current_xact_id()::text AS xid FROM event_log_identity",
        )
      ).rows[0]!;
    } finally {
      await client.end();
    }
    const tokens = new ResumeTokens({ id: identity.log_id, key: identity.key });
    const ahead = tokens.encode({ xid: BigInt(identity.xid) + 1_000_000n, id: 1n });
    const outcome = await resumeOutcome(a, randomUserId(), ahead);
    expect(outcome.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(outcome.details).toMatch(/ahead of this database's event log/);
    expect(outcome.details).toMatch(REWATCH);
  });

  it("honours a token from a replica that has read further than this one", async () => {
    // This replica hears of no other replica's writes (its own key prefix) and polls rarely, so its position stays behind.
    const behind = await startTestService({
      label: "tokens_behind",
      env: { ...env, EVENT_POLL_INTERVAL_MS: "600000" },
      database: a.database,
    });
    const keepsBusy = new WatchStream(behind.grpc.stream({ userIds: [randomUserId()] }, watcher));
    try {
      await keepsBusy.until((s) => s.received.length > 0, 10_000, "a bookmark");
      const user = randomUserId();
      const stream = watch(a, { userIds: [user] });
      await stream.until((s) => s.received.length > 0, 10_000, "a bookmark");
      await setName(a, user, "one");
      await stream.until((s) => s.events.length === 1, 10_000, "the event");
      const token = stream.lastToken;
      stream.cancel();
      // Written through the replica that is behind, so it reads the outbox at once (nothing else wakes it).
      await setName(behind, user, "two");

      const outcome = await resumeOutcome(behind, user, token);
      expect(outcome).toMatchObject({ code: undefined, events: 1 });
    } finally {
      keepsBusy.cancel();
      await behind.close();
    }
  });
});

describe("old and broken tokens", () => {
  it("honours an old p1 token for one release, and refuses one that is ahead", async () => {
    const user = randomUserId();
    const current = claimedPosition(await tokenBeforeAWrite(a, user))!;
    const p1 = (xid: bigint, id: bigint) => Buffer.from(`p1:${xid}:${id}`).toString("base64url");
    expect(await resumeOutcome(a, user, p1(current.xid, current.id))).toMatchObject({ code: undefined, events: 1 });

    const outcome = await resumeOutcome(a, user, p1(current.xid + 1_000_000n, 1n));
    expect(outcome.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(outcome.details).toMatch(/ahead/);
  });

  it("answers INVALID_ARGUMENT for garbage and for a token edited by hand", async () => {
    const user = randomUserId();
    const token = await tokenBeforeAWrite(a, user);
    const bytes = Buffer.from(token, "base64url");
    const edited = Buffer.from(bytes);
    edited[bytes.length - 9]! ^= 1; // the low byte of the event id
    const truncated = bytes.subarray(0, bytes.length - 1);
    for (const bad of [edited.toString("base64url"), truncated.toString("base64url"), "garbage!", `${token}A`]) {
      const outcome = await resumeOutcome(a, user, bad);
      expect(outcome.code, bad).toBe(grpc.status.INVALID_ARGUMENT);
    }
  });
});
