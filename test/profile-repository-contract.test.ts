// One suite, two databases: the same migrations and SQL on PostgreSQL and on
// PGlite, with the same results down to the JS shapes of the rows.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtagMismatchError, NotFoundError } from "../src/profiles/errors.js";
import { Outbox } from "../src/events/outbox.js";
import type { PreferencesPatch, ProfilePatch } from "../src/profiles/records.js";
import { ProfileRepository } from "../src/profiles/repository.js";
import type { Database } from "../src/store/database.js";
import { migrate, migrations } from "../src/store/migrations.js";
import { PgDatabase } from "../src/store/pg-database.js";
import { PGliteDatabase } from "../src/store/pglite-database.js";
import { createTestDatabase, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";

interface Subject {
  db: Database;
  /** Closes and opens the same database again, as a restart would. */
  reopen(): Promise<Database>;
  destroy(): Promise<void>;
}

async function postgres(): Promise<Subject> {
  const database: TestDatabase = await createTestDatabase("profile_store_contract");
  const open = () => new PgDatabase({ connectionString: database.url, max: 4, statementTimeoutMs: 10_000 });
  const subject: Subject = {
    db: open(),
    async reopen() {
      await subject.db.close();
      subject.db = open();
      return subject.db;
    },
    async destroy() {
      await subject.db.close();
      await database.drop();
    },
  };
  return subject;
}

// One data directory for the file: creating one runs initdb, which costs seconds; reopening is quick.
const pgliteDir = mkdtempSync(join(tmpdir(), "ps-pglite-"));
afterAll(() => rmSync(pgliteDir, { recursive: true, force: true }));

async function pglite(): Promise<Subject> {
  const dir = pgliteDir;
  const subject: Subject = {
    db: await PGliteDatabase.open(dir),
    async reopen() {
      await subject.db.close();
      subject.db = await PGliteDatabase.open(dir);
      return subject.db;
    },
    async destroy() {
      await subject.db.close();
    },
  };
  return subject;
}

describe.each([
  ["PostgreSQL", postgres],
  ["PGlite", pglite],
])("ProfileRepository on %s", (_name, open) => {
  let subject: Subject;
  let sql: ProfileRepository;
  let firstMigration: number[];
  // The records the store wrote; its events are checked in their own test below.
  const store = {
    getProfiles: (ids: string[]) => sql.getProfiles(ids),
    getPreferences: (ids: string[]) => sql.getPreferences(ids),
    upsertProfile: async (id: string, patch: ProfilePatch, version?: number) =>
      (await sql.upsertProfile(id, patch, version)).record,
    upsertPreferences: async (id: string, patch: PreferencesPatch, version?: number) =>
      (await sql.upsertPreferences(id, patch, version)).record,
    deleteProfile: (id: string, version?: number) => sql.deleteProfile(id, version),
  };

  beforeAll(async () => {
    subject = await open();
    firstMigration = await migrate(subject.db);
    sql = new ProfileRepository(subject.db);
  });
  afterAll(() => subject?.destroy());

  it("applies each migration once, and none again after a restart; data persists", async () => {
    expect(firstMigration).toEqual(migrations.map((m) => m.version));
    expect(await migrate(subject.db)).toEqual([]);
    const id = randomUserId();
    await store.upsertProfile(id, { firstName: "Persisted" });

    const reopened = await subject.reopen();
    sql = new ProfileRepository(reopened);
    expect(await migrate(reopened)).toEqual([]);
    expect((await store.getProfiles([id])).get(id)?.firstName).toBe("Persisted");
  });

  it("returns rows in pg's JS shapes: uuid and int8 as strings, timestamptz as Date, jsonb parsed", async () => {
    const id = randomUserId();
    await store.upsertPreferences(id, { settings: { nested: { a: [1, "two", true, null] } } });
    const { rows } = await subject.db.query<Record<string, unknown>>(
      "SELECT user_id, version, updated_at, settings, email_notifications FROM preferences WHERE user_id = $1",
      [id],
    );
    const row = rows[0]!;
    expect(row.user_id).toBe(id);
    expect(typeof row.version).toBe("string");
    expect(row.updated_at).toBeInstanceOf(Date);
    expect(row.settings).toEqual({ nested: { a: [1, "two", true, null] } });
    expect(row.email_notifications).toBe(true);
    const count = await subject.db.query<{ n: unknown; i: unknown }>(
      "SELECT count(*) AS n, 7::int4 AS i FROM preferences",
    );
    expect(typeof count.rows[0]!.n).toBe("string");
    expect(count.rows[0]!.i).toBe(7);
  });

  it("reports rowCount as pg does: rows written, or rows read", async () => {
    const [a, b] = [randomUserId(), randomUserId()];
    await store.upsertProfile(a, { bio: "" });
    await store.upsertProfile(b, { bio: "" });
    const updated = await subject.db.query("UPDATE profiles SET bio = 'x' WHERE user_id = ANY($1::uuid[])", [[a, b]]);
    expect(updated.rowCount).toBe(2);
    const read = await subject.db.query("SELECT 1 FROM profiles WHERE user_id = ANY($1::uuid[])", [[a, b]]);
    expect(read.rowCount).toBe(2);
  });

  it("creates, reads and updates a profile, bumping the version and keeping unwritten fields", async () => {
    const id = randomUserId();
    const created = await store.upsertProfile(id, { firstName: "John", lastName: "Doe", phone: "+81-90-1234-5678" });
    expect(created).toMatchObject({
      userId: id,
      firstName: "John",
      lastName: "Doe",
      bio: "",
      phone: "+81-90-1234-5678",
    });
    expect(created.createdAt).toBeInstanceOf(Date);
    expect(Number.isSafeInteger(created.version)).toBe(true);
    expect((await store.getProfiles([id])).get(id)).toEqual(created);

    await sleep(5);
    const updated = await store.upsertProfile(id, { bio: "hello" }, created.version);
    expect(updated.version).toBeGreaterThan(created.version);
    expect(updated).toMatchObject({ firstName: "John", lastName: "Doe", bio: "hello" });
    expect(updated.createdAt).toEqual(created.createdAt);
    expect(updated.updatedAt.getTime()).toBeGreaterThan(created.updatedAt.getTime());
  });

  it("writes the same columns whatever the order of the patch, and names them in column order", async () => {
    const id = randomUserId();
    const written = await sql.upsertProfile(id, { phone: "+81-90-1234-5678", bio: "b", firstName: "F" });
    expect(written.record).toMatchObject({ firstName: "F", lastName: "", bio: "b", phone: "+81-90-1234-5678" });
    expect(written.event.updatedFields).toEqual(["first_name", "bio", "phone"]);
    const again = await sql.upsertProfile(id, { lastName: "L", firstName: "G" }, written.record.version);
    expect(again.record).toMatchObject({ firstName: "G", lastName: "L", bio: "b", phone: "+81-90-1234-5678" });
    expect(again.event.updatedFields).toEqual(["first_name", "last_name"]);

    const prefs = await sql.upsertPreferences(id, { settings: { a: 1 }, pushNotifications: false, theme: "dark" });
    expect(prefs.record).toMatchObject({ theme: "dark", pushNotifications: false, settings: { a: 1 } });
    expect(prefs.event.updatedFields).toEqual(["theme", "push_notifications", "settings"]);
  });

  it("refuses a write with a stale or unknown version", async () => {
    const id = randomUserId();
    const v1 = await store.upsertProfile(id, { firstName: "A" });
    const v2 = await store.upsertProfile(id, { firstName: "B" }, v1.version);
    await expect(store.upsertProfile(id, { firstName: "C" }, v1.version)).rejects.toBeInstanceOf(EtagMismatchError);
    await expect(store.upsertProfile(randomUserId(), { firstName: "C" }, v2.version)).rejects.toBeInstanceOf(
      EtagMismatchError,
    );
    await expect(store.deleteProfile(id, v1.version)).rejects.toBeInstanceOf(EtagMismatchError);
    expect((await store.getProfiles([id])).get(id)?.firstName).toBe("B");

    const prefs = await store.upsertPreferences(id, { theme: "dark" });
    await store.upsertPreferences(id, { theme: "light" }, prefs.version);
    await expect(store.upsertPreferences(id, { theme: "x" }, prefs.version)).rejects.toBeInstanceOf(EtagMismatchError);
  });

  it("stores preferences with defaults, booleans and settings", async () => {
    const id = randomUserId();
    const created = await store.upsertPreferences(id, {
      language: "ja",
      pushNotifications: true,
      settings: { tz: "Asia/Tokyo" },
    });
    expect(created).toMatchObject({
      userId: id,
      theme: "system",
      language: "ja",
      emailNotifications: true,
      pushNotifications: true,
      settings: { tz: "Asia/Tokyo" },
    });
    expect((await store.getPreferences([id])).get(id)).toEqual(created);
  });

  it("deletes a profile together with its preferences", async () => {
    const id = randomUserId();
    const profile = await store.upsertProfile(id, { firstName: "Gone" });
    await store.upsertPreferences(id, { theme: "dark" });
    await store.deleteProfile(id, profile.version);
    expect((await store.getProfiles([id])).size).toBe(0);
    expect((await store.getPreferences([id])).size).toBe(0);
    await expect(store.deleteProfile(id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("never reuses a version after a delete and re-create", async () => {
    const id = randomUserId();
    const before = await store.upsertProfile(id, { firstName: "A" });
    await store.deleteProfile(id);
    const after = await store.upsertProfile(id, { firstName: "A" });
    expect(after.version).toBeGreaterThan(before.version);
  });

  it("reads a batch with one ANY($1) query, skipping unknown ids", async () => {
    const ids = [randomUserId(), randomUserId(), randomUserId()];
    for (const id of ids) {
      await store.upsertProfile(id, { firstName: id.slice(0, 4) });
      await store.upsertPreferences(id, { theme: "dark" });
    }
    const unknown = randomUserId();
    const profiles = await store.getProfiles([...ids, unknown]);
    expect([...profiles.keys()].sort()).toEqual([...ids].sort());
    for (const id of ids) expect(profiles.get(id)?.firstName).toBe(id.slice(0, 4));
    const preferences = await store.getPreferences([unknown, ...ids]);
    expect([...preferences.keys()].sort()).toEqual([...ids].sort());
    expect((await store.getProfiles([])).size).toBe(0);
  });

  it("appends every write's event in the same transaction, readable in commit order below the watermark", async () => {
    const outbox = new Outbox(subject.db);
    const start = (await outbox.readAfter({ xid: 0n, id: 0n }, 0)).watermark;
    const id = randomUserId();
    const written = await sql.upsertProfile(id, { firstName: "E", bio: "x" });
    await sql.upsertPreferences(id, { theme: "dark" });
    const deleted = await sql.deleteProfile(id);
    await expect(sql.upsertProfile(id, { firstName: "F" }, 1)).rejects.toBeInstanceOf(EtagMismatchError);
    // The watermark is cluster-wide: another test's open transaction may hold these back for a moment.
    let events: Awaited<ReturnType<Outbox["readAfter"]>>["events"] = [];
    await expect
      .poll(async () => (events = (await outbox.readAfter(start, 100, { filter: { userIds: [id] } })).events).length, {
        timeout: 10_000,
      })
      .toBe(3);
    expect(events.map((e) => [e.type, e.userId, e.updatedFields])).toEqual([
      ["profile_updated", id, ["first_name", "bio"]],
      ["preferences_updated", id, ["theme"]],
      ["profile_deleted", id, []],
    ]);
    expect(events[0]!.eventId).toBe(written.event.eventId);
    expect(events[2]!.eventId).toBe(deleted.eventId);
    expect(events.every((e) => e.time instanceof Date)).toBe(true);
  });

  it("rolls a failed transaction back, and never shows its writes to anyone", async () => {
    const id = randomUserId();
    let inserted!: () => void;
    const insertedOnce = new Promise<void>((r) => (inserted = r));
    const failing = subject.db.transaction(async (tx) => {
      await tx.query("INSERT INTO profiles (user_id, version) VALUES ($1, nextval('row_version_seq'))", [id]);
      inserted();
      await sleep(30);
      throw new Error("boom");
    });
    await insertedOnce;
    // On PostgreSQL another connection answers at once; on PGlite the query waits its turn.
    const seen = await subject.db.query<{ n: string }>("SELECT count(*) AS n FROM profiles WHERE user_id = $1", [id]);
    await expect(failing).rejects.toThrow("boom");
    expect(Number(seen.rows[0]!.n)).toBe(0);
    expect((await store.getProfiles([id])).size).toBe(0);
  });

  it("isolates concurrent transactions: read-modify-write never loses an update", async () => {
    await subject.db.query("CREATE TABLE IF NOT EXISTS contract_counter (id int PRIMARY KEY, n int NOT NULL)");
    await subject.db.query("INSERT INTO contract_counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0");
    const increment = (fail: boolean) =>
      subject.db.transaction(async (tx) => {
        const { rows } = await tx.query<{ n: number }>("SELECT n FROM contract_counter WHERE id = 1 FOR UPDATE");
        await sleep(2); // let every other transaction reach the same point
        await tx.query("UPDATE contract_counter SET n = $1 WHERE id = 1", [rows[0]!.n + 1]);
        if (fail) throw new Error("rolled back");
      });
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => increment(i % 4 === 3)));
    expect(results.filter((r) => r.status === "rejected")).toHaveLength(3);
    const { rows } = await subject.db.query<{ n: number }>("SELECT n FROM contract_counter WHERE id = 1");
    expect(rows[0]!.n).toBe(9);
  });

  it("runs a withConnection block on one session, and runs multi-statement SQL without parameters", async () => {
    const pid = await subject.db.withConnection(async (conn) => {
      await conn.query(
        "CREATE TEMP TABLE IF NOT EXISTS contract_session (v int); INSERT INTO contract_session VALUES (1)",
      );
      const first = await conn.query<{ p: number }>("SELECT pg_backend_pid() AS p");
      const { rows } = await conn.query<{ n: string }>("SELECT count(*) AS n FROM contract_session");
      expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(1);
      const second = await conn.query<{ p: number }>("SELECT pg_backend_pid() AS p");
      expect(second.rows[0]!.p).toBe(first.rows[0]!.p);
      return first.rows[0]!.p;
    });
    expect(typeof pid).toBe("number");
  });
});

describe("PgDatabase prepared statements", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase("prepared_statements");
  });
  afterAll(() => database?.drop());

  const preparedOnConnection = (preparedStatements: boolean) => {
    const db = new PgDatabase({
      connectionString: database.url,
      max: 1,
      statementTimeoutMs: 10_000,
      preparedStatements,
    });
    return db
      .withConnection(async (conn) => {
        for (let i = 0; i < 3; i++) await conn.query("SELECT $1::int + 1 AS n", [i], { prepare: true });
        await conn.query("SELECT $1::int + 2 AS n", [1]);
        const { rows } = await conn.query<{ name: string; statement: string }>(
          "SELECT name, statement FROM pg_prepared_statements ORDER BY name",
        );
        return rows;
      })
      .finally(() => db.close());
  };

  it("keeps a statement marked prepare prepared on the connection, under one name, and only that one", async () => {
    const rows = await preparedOnConnection(true);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      name: expect.stringMatching(/^ps_[0-9a-f]{24}$/),
      statement: "SELECT $1::int + 1 AS n",
    });
  });

  it("prepares nothing when DB_PREPARED_STATEMENTS is off (a pooler that cannot keep them)", async () => {
    expect(await preparedOnConnection(false)).toEqual([]);
  });
});

describe("PGliteDatabase", () => {
  // The suite's data directory again (a new one would cost another initdb); the close test goes last.
  let db: PGliteDatabase;
  beforeAll(async () => {
    db = await PGliteDatabase.open(pgliteDir);
  });
  afterAll(() => db?.close());

  it("rolls back a transaction a withConnection block left open, so the next caller starts clean", async () => {
    await db.query("CREATE TABLE abandoned (v int)");
    await expect(
      db.withConnection(async (conn) => {
        await conn.query("BEGIN");
        await conn.query("INSERT INTO abandoned VALUES (1)");
        throw new Error("abandoned");
      }),
    ).rejects.toThrow("abandoned");
    expect((await db.query<{ n: string }>("SELECT count(*) AS n FROM abandoned")).rows[0]!.n).toBe("0");
  });

  it("refuses calls on a block's executor once the block has ended", async () => {
    let leaked!: { query: Database["query"] };
    await db.withConnection(async (conn) => void (leaked = conn));
    await expect(leaked.query("SELECT 1")).rejects.toThrow("released");
  });

  it("strips query parameters (possibly personal data) from its errors", async () => {
    const err = await db.query("SELECT $1::int AS n", ["+81-90-1234-5678"]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "22P02" });
    expect(err).not.toHaveProperty("params");
  });

  it("refuses work after close, and lets work queued before it finish", async () => {
    const queued = db.query<{ one: number }>("SELECT 1 AS one");
    const closing = db.close();
    await expect(queued).resolves.toMatchObject({ rows: [{ one: 1 }] });
    await closing;
    await expect(db.query("SELECT 1")).rejects.toThrow("database unavailable");
  });
});
