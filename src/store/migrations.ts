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
  {
    version: 2,
    name: "event outbox",
    sql: `
      -- Written in the same transaction as the change it describes. Readers
      -- order by (xid, id) and read only below the oldest running transaction
      -- (pg_snapshot_xmin), so a row that commits late can never be skipped.
      CREATE TABLE profile_events (
        id             bigserial PRIMARY KEY,
        xid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
        type           text NOT NULL CHECK (type IN ('profile_updated', 'profile_deleted', 'preferences_updated')),
        user_id        uuid NOT NULL,
        updated_fields text[] NOT NULL DEFAULT '{}',
        created_at     timestamptz NOT NULL DEFAULT now(),
        published_at   timestamptz
      );
      CREATE INDEX profile_events_position_idx ON profile_events (xid, id);
      CREATE INDEX profile_events_user_idx ON profile_events (user_id, xid, id);
      CREATE INDEX profile_events_unpublished_idx ON profile_events (xid, id) WHERE published_at IS NULL;
      CREATE INDEX profile_events_created_at_idx ON profile_events (created_at);

      -- The newest position deleted by retention: a resume token older than it may have gaps.
      CREATE TABLE profile_events_pruned (
        singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        xid        xid8 NOT NULL,
        id         bigint NOT NULL,
        pruned_at  timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 3,
    name: "event log identity",
    sql: `
      -- Which event log resume tokens belong to (Outbox.eventLog): a random id
      -- and MAC key, and what the database looked like when they were made, so
      -- that a copy or restore elsewhere is noticed and gets an identity of its own.
      CREATE TABLE event_log_identity (
        singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        log_id             bytea NOT NULL CHECK (length(log_id) = 8),
        key                bytea NOT NULL CHECK (length(key) = 32),
        system_identifier  text,
        database_oid       oid NOT NULL,
        checked_xid        xid8 NOT NULL,
        created_at         timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 4,
    name: "events are done when invalidated",
    sql: `
      -- An event is done only once the cache DEL of every key it touches and
      -- its PUBLISH have both succeeded; until then the relay retries it. The
      -- column recorded the PUBLISH alone, so it is renamed for what it now
      -- means (a rename touches no row). Events the previous release marked
      -- published count as done: whether their DEL landed was never recorded.
      -- Replicas of the previous release still running during a rollout fail
      -- their relay, mark and prune statements (logged) until replaced; their
      -- reads and writes do not use the column, and the new replicas' relay
      -- finishes the events they write.
      ALTER TABLE profile_events RENAME COLUMN published_at TO invalidated_at;
      ALTER INDEX profile_events_unpublished_idx RENAME TO profile_events_unfinished_idx;
    `,
  },
  {
    version: 5,
    name: "event trace context",
    sql: `
      -- The W3C traceparent of the write that appended the event, when it was
      -- traced (OTEL_EXPORTER_OTLP_ENDPOINT): a watcher's delivery span links
      -- to it. NULL otherwise, and for every event written before; the
      -- previous release never names the column, so it runs on beside this one.
      ALTER TABLE profile_events ADD COLUMN trace_context text;
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
