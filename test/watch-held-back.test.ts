// An event whose commit is held back by an older transaction still running
// (anywhere in the PostgreSQL cluster: transaction ids are cluster-wide) is
// not visible to the outbox tail until that transaction ends. The watch hub
// keeps retrying the events it was told about until it has read them, so a
// watcher gets the event soon after the old transaction ends, not at the next
// safety-net poll (a minute here, so that only the retries can deliver it).

import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./support/servers.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

const HELD_MS = 1500;

let svc: TestService;
let elsewhere: TestDatabase;
let writer: string;
let watcher: string;

beforeAll(async () => {
  svc = await startTestService({
    label: "held_back",
    env: { EVENT_POLL_INTERVAL_MS: "60000", WATCH_PROGRESS_INTERVAL_SECONDS: "30" },
  });
  // Another database in the same cluster, as another application or another test would use.
  elsewhere = await createTestDatabase("held_back_elsewhere");
  writer = await mintToken(randomUserId(), { scope: "profiles:write" });
  watcher = await mintToken("held-back-tests", { scope: "profiles:watch" });
});
afterAll(async () => {
  await svc?.close();
  await elsewhere?.drop();
});

/** Opens a transaction that has a transaction id (it wrote), and ends it after `ms`. */
async function holdOlderTransaction(url: string, ms: number): Promise<{ ended: Promise<number> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("BEGIN");
  await client.query("SELECT pg_current_xact_id()");
  const ended = (async () => {
    await new Promise((r) => setTimeout(r, ms));
    await client.query("COMMIT");
    await client.end();
    return performance.now();
  })();
  return { ended };
}

describe("an event held back by an older transaction", () => {
  for (const where of ["another database of the cluster", "the service's own database"] as const) {
    it(`reaches its watcher soon after that transaction (in ${where}) ends`, async () => {
      const user = randomUserId();
      const stream = new WatchStream(svc.grpc.stream({ userIds: [user] }, watcher));
      try {
        await stream.until((s) => s.received.length > 0, 10_000, "the opening bookmark");
        const older = await holdOlderTransaction(
          where === "the service's own database" ? svc.database.url : elsewhere.url,
          HELD_MS,
        );
        await svc.grpc.unary("updateProfile", { userId: user, profile: { firstName: "held" } }, writer);
        const endedAt = await older.ended;
        await stream.until((s) => s.events.length === 1, 10_000, "the event");
        const lateMs = performance.now() - endedAt;
        console.log(`event ${Math.round(lateMs)} ms after the older transaction ended`);
        expect(lateMs).toBeLessThan(3000);
      } finally {
        stream.cancel();
      }
    });
  }
});
