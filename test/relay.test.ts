// The relay publishes events whose writer never did (a crash between COMMIT
// and PUBLISH), and replicas running it at once never publish one twice.

import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendEvent } from "./support/append-event.js";
import { PgDatabase } from "../src/store/pg-database.js";
import { testRedisUrl } from "./support/servers.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";

let a: TestService;
let b: TestService;
let db: PgDatabase;
let subscriber: Redis;
const seen: string[] = [];

beforeAll(async () => {
  // Long intervals: the test drives the relay passes itself.
  const env = { EVENT_RELAY_INTERVAL_MS: "600000", EVENT_RELAY_GRACE_MS: "0" };
  a = await startTestService({ label: "relay", env });
  b = await startTestService({ label: "relay_b", env, database: a.database, keyPrefix: a.keyPrefix });
  db = new PgDatabase({ connectionString: a.database.url, max: 2, statementTimeoutMs: 10_000 });
  subscriber = new Redis(testRedisUrl);
  subscriber.on("message", (_c: string, m: string) =>
    seen.push(String((JSON.parse(m) as { event_id: string }).event_id)),
  );
  await subscriber.subscribe(`${a.keyPrefix}profile:updated`);
});
afterAll(async () => {
  subscriber?.disconnect();
  await db?.close();
  await b?.close();
  await a?.close();
});

describe("the relay", () => {
  it("publishes committed events nobody published, once, even with every replica relaying", async () => {
    // As if 200 writers had crashed right after COMMIT.
    const ids: string[] = [];
    await db.transaction(async (tx) => {
      for (let i = 0; i < 200; i++) {
        ids.push((await appendEvent(tx, { type: "profile_updated", userId: randomUserId(), fields: ["bio"] })).eventId);
      }
    });
    await Promise.all([a.app.relay.runOnce(), b.app.relay.runOnce(), a.app.relay.runOnce(), b.app.relay.runOnce()]);
    await expect.poll(() => ids.filter((id) => seen.includes(id)).length).toBe(200);
    expect(seen.filter((id) => ids.includes(id))).toHaveLength(200);
    const { rows } = await db.query<{ n: string }>(
      "SELECT count(*)::text AS n FROM profile_events WHERE id = ANY($1::bigint[]) AND invalidated_at IS NULL",
      [ids],
    );
    expect(rows[0]!.n).toBe("0");
  });
});
