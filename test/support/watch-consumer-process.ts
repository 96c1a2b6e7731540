// A caller of the watch client as a process of its own, so a test can
// SIGKILL it and start it again. It keeps a read model in PostgreSQL: each
// event is applied (a row in consumer_events) in the same transaction that
// stores its resume token, the exactly-once arrangement token-store.ts
// describes. Bookmark tokens go through the store's save().
//
// Environment: ADDRESSES (comma-separated), TOKEN, USER_ID, CONSUMER_DATABASE_URL.
// Prints "live" once the watch is live.

import pg from "pg";
import { ProfileClient, type ResumeTokenStore } from "../../client/src/index.js";

const env = (name: string) => {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
};

const db = new pg.Pool({ connectionString: env("CONSUMER_DATABASE_URL"), max: 2 });
await db.query(`
  CREATE TABLE IF NOT EXISTS consumer_events (seq bigserial PRIMARY KEY, event_id text NOT NULL, run int NOT NULL);
  CREATE TABLE IF NOT EXISTS consumer_token (singleton boolean PRIMARY KEY DEFAULT true, token text NOT NULL);
  CREATE TABLE IF NOT EXISTS consumer_runs (run serial PRIMARY KEY, started_at timestamptz NOT NULL DEFAULT now());
`);
const run = (await db.query<{ run: number }>("INSERT INTO consumer_runs DEFAULT VALUES RETURNING run")).rows[0]!.run;

const SAVE_TOKEN =
  "INSERT INTO consumer_token (token) VALUES ($1) ON CONFLICT (singleton) DO UPDATE SET token = EXCLUDED.token";
const store: ResumeTokenStore = {
  async load() {
    return (await db.query<{ token: string }>("SELECT token FROM consumer_token")).rows[0]?.token;
  },
  async save(token) {
    await db.query(SAVE_TOKEN, [token]);
  },
};

const client = new ProfileClient({ addresses: env("ADDRESSES").split(","), token: env("TOKEN") });
let live = false;
for await (const item of client.watch(
  { userIds: [env("USER_ID")] },
  { tokenStore: store, bookmarks: true, relist: async () => {} },
)) {
  if (item.type === "event") {
    const tx = await db.connect();
    try {
      await tx.query("BEGIN");
      await tx.query("INSERT INTO consumer_events (event_id, run) VALUES ($1, $2)", [item.event.eventId, run]);
      await tx.query(SAVE_TOKEN, [item.resumeToken]);
      await tx.query("COMMIT");
    } catch (err) {
      await tx.query("ROLLBACK");
      throw err;
    } finally {
      tx.release();
    }
  } else if (!live) {
    live = true;
    console.log("live");
  }
}
