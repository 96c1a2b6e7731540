import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, migrations } from "../src/store/migrations.js";
import { PgDatabase } from "../src/store/pg-database.js";
import { createTestDatabase, type TestDatabase } from "./support/servers.js";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase("migrations");
});
afterAll(async () => {
  await database?.drop();
});

describe("migrations", () => {
  it("applies each migration exactly once when several instances start at the same moment", async () => {
    const instances = Array.from(
      { length: 4 },
      () => new PgDatabase({ connectionString: database.url, max: 2, statementTimeoutMs: 10_000 }),
    );
    try {
      const applied = await Promise.all(instances.map((db) => migrate(db)));
      // Exactly one instance applied every migration; the others found nothing to do.
      expect(applied.flat().sort()).toEqual(migrations.map((m) => m.version).sort());
      const { rows } = await instances[0]!.query<{ version: number }>(
        "SELECT version FROM schema_migrations ORDER BY version",
      );
      expect(rows.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
      expect(await migrate(instances[0]!)).toEqual([]);
    } finally {
      await Promise.all(instances.map((db) => db.close()));
    }
  });

  it("rolls back a failing migration and leaves it pending", async () => {
    const scratch = await createTestDatabase("migrations_fail");
    const db = new PgDatabase({ connectionString: scratch.url, max: 1, statementTimeoutMs: 10_000 });
    try {
      const broken = [
        ...migrations,
        { version: 999, name: "broken", sql: "CREATE TABLE half_done (id int); SELECT no_such_function();" },
      ];
      await expect(migrate(db, broken)).rejects.toThrow();
      const { rows } = await db.query<{ t: string | null }>("SELECT to_regclass('half_done')::text AS t");
      expect(rows[0]!.t).toBeNull();
      expect(await migrate(db)).toEqual([]);
    } finally {
      await db.close();
      await scratch.drop();
    }
  });
});
