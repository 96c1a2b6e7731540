// Pool isolation: a burst of 2,000 WatchProfileEvents opens, half of them
// resuming, over many real HTTP/2 connections to the real binary, at a moment
// when PostgreSQL is slow to answer what resuming opens read (the retention
// table is locked for a few seconds, as a migration or VACUUM FULL would).
// Every open gets its stream or RESOURCE_EXHAUSTED (never "the database is
// unavailable"), the health probe keeps answering SERVING, and ordinary calls
// keep answering correctly throughout.

import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { grpc, grpcProfileClient, type GrpcProfileClient } from "./support/grpc-client.js";
import { grpcHealthClient } from "./support/grpc-health-client.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { h2Sessions, H2WatchStream } from "./support/h2-watch.js";
import { WatchStream } from "./support/watch-stream.js";

const OPENS = 2000;
const CONNECTIONS = 40;
const MISSED_EVENTS_PER_RESUMER = 3;
const SERVING = 1;
// Longer than a call may wait for a pool connection (3 s) and than the probe interval (5 s).
const LOCKED_MS = 6000;

let database: TestDatabase;
let service: ChildService;

beforeAll(async () => {
  database = await createTestDatabase("watch_burst");
  service = await ChildService.start(
    await serviceEnv(
      { databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("watch_burst") },
      {
        DB_POOL_SIZE: "4",
        // The lock below must not run into the statement timeout: this is a slow database, not a failing one.
        DB_STATEMENT_TIMEOUT_MS: "20000",
      },
    ),
  );
}, 90_000);
afterAll(async () => {
  await service?.stop("SIGKILL");
  await database?.drop();
});

/** grpc-js shares one connection per target unless told to keep a pool of its own. */
function clientOnItsOwnConnection(): GrpcProfileClient {
  return grpcProfileClient(`127.0.0.1:${service.port}`, undefined, { "grpc.use_local_subchannel_pool": 1 });
}

describe("a burst of watch opens", () => {
  it("queues or sheds with RESOURCE_EXHAUSTED, while health stays SERVING and other calls keep answering", async () => {
    const address = `127.0.0.1:${service.port}`;
    const users = Array.from({ length: OPENS }, () => randomUserId());
    const tokens = await Promise.all(users.map((u) => mintToken(u)));
    const sessions = await h2Sessions(`http://${address}`, CONNECTIONS);
    const health = grpcHealthClient(address);
    const reader = clientOnItsOwnConnection();
    const direct = new pg.Client({ connectionString: database.url });
    await direct.connect();
    const streams: H2WatchStream[] = [];
    try {
      // A resume token from before the events the resumers missed.
      const first = new WatchStream(reader.stream({ userIds: [users[0]!] }, tokens[0]));
      await first.until((s) => s.received.length > 0, 10_000, "a bookmark");
      const resumeToken = first.lastToken;
      first.cancel();
      const resumers = users.filter((_, i) => i % 2 === 1);
      await direct.query(
        `INSERT INTO profile_events (type, user_id, updated_fields)
         SELECT 'profile_updated', u, '{bio}' FROM unnest($1::uuid[]) u, generate_series(1, $2)`,
        [resumers, MISSED_EVENTS_PER_RESUMER],
      );
      // With no watcher left, the hub goes idle at its next poll; the burst then starts from idle.
      await new Promise((r) => setTimeout(r, 1500));

      // Health, checked the way a load balancer does, for the whole burst and a full probe interval after it.
      const healthAnswers: (number | string)[] = [];
      let checking = true;
      const checker = (async () => {
        while (checking) {
          healthAnswers.push(
            await health.check("profile.v1.ProfileService").then(
              (r) => r.status,
              (e: grpc.ServiceError) => `error ${e.code}`,
            ),
          );
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      // Ordinary calls that need PostgreSQL: each write is read back.
      const readerToken = await mintToken(randomUserId());
      const wrongAnswers: string[] = [];
      let reads = 0;
      const ordinary = (async () => {
        while (checking) {
          const name = `n${reads}`;
          try {
            await reader.unary("updateProfile", { profile: { firstName: name } }, readerToken);
            const got = await reader.unary("getProfile", {}, readerToken);
            if (got.profile?.firstName !== name) wrongAnswers.push(`read ${got.profile?.firstName}, wrote ${name}`);
          } catch (err) {
            wrongAnswers.push(`${(err as grpc.ServiceError).code} ${(err as grpc.ServiceError).details}`);
          }
          reads++;
        }
      })();

      // The slow moment: what resuming opens read is locked for a while, well within the statement timeout.
      const locker = new pg.Client({ connectionString: database.url });
      await locker.connect();
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE profile_events_pruned IN ACCESS EXCLUSIVE MODE");
      const unlocked = new Promise((r) => setTimeout(r, LOCKED_MS)).then(async () => {
        await locker.query("COMMIT");
        await locker.end();
      });

      const started = Date.now();
      users.forEach((user, i) => {
        const request = i % 2 === 1 ? { userIds: [user], resumeToken } : { userIds: [user] };
        streams.push(new H2WatchStream(sessions[i % CONNECTIONS]!, request, tokens[i]!));
      });
      await Promise.all(
        streams.map((s) => s.until((x) => x.received.length > 0 || x.status !== undefined, 60_000, "open")),
      );
      const opened = Date.now() - started;
      await unlocked;
      // At least one full probe interval (5 s) after the burst began.
      await new Promise((r) => setTimeout(r, Math.max(0, 6000 - opened)));
      checking = false;
      await Promise.all([checker, ordinary]);

      const codes = new Map<string, number>();
      for (const s of streams) {
        const key = s.received.length > 0 ? "open" : (grpc.status[s.status!] ?? String(s.status));
        codes.set(key, (codes.get(key) ?? 0) + 1);
      }
      console.log(`burst of ${OPENS} opens: ${JSON.stringify(Object.fromEntries(codes))} in ${opened} ms`);
      const failures = streams.filter((s) => s.received.length === 0 && s.status !== grpc.status.RESOURCE_EXHAUSTED);
      expect(failures.map((s) => `${s.status} ${s.message}`).slice(0, 5)).toEqual([]);
      expect(codes.get("open") ?? 0).toBeGreaterThan(0);
      expect(healthAnswers.filter((a) => a !== SERVING)).toEqual([]);
      expect(wrongAnswers).toEqual([]);
      expect(reads).toBeGreaterThan(0);

      // The resumers that got in receive exactly what they missed.
      const resumedOk = streams.filter((s, i) => i % 2 === 1 && s.received.length > 0);
      await Promise.all(
        resumedOk.map((s) => s.until((x) => x.events.length >= MISSED_EVENTS_PER_RESUMER, 30_000, "missed events")),
      );
      expect(resumedOk.every((s) => s.events.length === MISSED_EVENTS_PER_RESUMER)).toBe(true);
    } finally {
      for (const s of streams) s.cancel();
      for (const s of sessions) s.close();
      reader.close();
      health.close();
      await direct.end();
    }
  }, 120_000);
});
