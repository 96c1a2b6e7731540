import type { Database } from "./database.js";

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

// Append only. A migration that has shipped is never edited.
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "profiles and preferences",
    sql: `
      -- One sequence for every row version: versions never repeat, even after a
      -- delete and re-create, so an old etag can never match a new row.
      CREATE SEQUENCE row_version_seq;

      CREATE TABLE profiles (
        user_id     uuid PRIMARY KEY,
        first_name  text NOT NULL DEFAULT '',
        last_name   text NOT NULL DEFAULT '',
        bio         text NOT NULL DEFAULT '',
        avatar_url  text NOT NULL DEFAULT '',
        phone       text NOT NULL DEFAULT '',
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        version     bigint NOT NULL
      );
      CREATE INDEX profiles_updated_at_idx ON profiles (updated_at DESC);

      CREATE TABLE preferences (
        user_id             uuid PRIMARY KEY,
        theme               text NOT NULL DEFAULT 'system',
        language            text NOT NULL DEFAULT 'en',
        email_notifications boolean NOT NULL DEFAULT true,
        push_notifications  boolean NOT NULL DEFAULT false,
        settings            jsonb NOT NULL DEFAULT '{}'::jsonb,
        updated_at          timestamptz NOT NULL DEFAULT now(),
        version             bigint NOT NULL
      );
    `,
  },
];

// Arbitrary but fixed: every replica must agree on it.
const MIGRATION_LOCK_KEY = 7_310_428_915;

/**
 * Applies pending migrations. Replicas starting together serialize on an
 * advisory lock, so exactly one applies each migration and the rest see it done.
 */
export async function migrate(db: Database, all: readonly Migration[] = migrations): Promise<number[]> {
  return db.withConnection(async (conn) => {
    await conn.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      await conn.query(`
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version    integer PRIMARY KEY,
          name       text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`);
      const { rows } = await conn.query<{ version: number }>("SELECT version FROM schema_migrations");
      const applied = new Set(rows.map((r) => Number(r.version)));
      const done: number[] = [];
      for (const migration of all) {
        if (applied.has(migration.version)) continue;
        await conn.query("BEGIN");
        try {
          await conn.query(migration.sql);
          await conn.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
            migration.version,
            migration.name,
          ]);
          await conn.query("COMMIT");
        } catch (err) {
          await conn.query("ROLLBACK").catch(() => {});
          throw err;
        }
        done.push(migration.version);
      }
      return done;
    } finally {
      await conn.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => {});
    }
  });
}
