// What PostgreSQL has committed for a set of users, and which of their cache
// keys still have a write in flight: one statement, for the consistency
// checker. It also picks the users to check when none are given.
//
// "In flight" comes from the outbox, so it covers writes made on every
// replica: an event is marked done only after the DEL of its keys landed
// (src/events/publisher.ts, relay.ts). A key with no unfinished event
// therefore had every DEL it is owed land before this statement ran.

import type { CacheType } from "../cache/cache-aside.js";
import type { SqlExecutor } from "../store/database.js";

export interface RowState {
  /** The committed row version, or null when there is no row. */
  version: number | null;
  /**
   * When the newest committed change of the key was made: the row's
   * `updated_at`, or for a deleted row its deletion's event time (null when
   * that event has been pruned, or the row never existed).
   */
  changedAt: Date | null;
  /** An event touching this key is not done yet, and younger than the in-flight window. */
  inFlight: boolean;
  /** An event touching this key is not done yet, and older than the window: its invalidation is late. */
  overdue: boolean;
}

export type UserState = Record<CacheType, RowState>;

export interface Snapshot {
  /** PostgreSQL's now() for the statement, the clock `changedAt` is on. */
  at: Date;
  users: Map<string, UserState>;
}

/** Exactly these users, or a sample: recent writes, overdue invalidations and a random stretch of ids, `size` each. */
export type Selection = { userIds: readonly string[] } | { sampleSize: number };

interface Row {
  user_id: string;
  checked_at: Date | string;
  profile_version: string | null;
  profile_updated_at: Date | string | null;
  preferences_version: string | null;
  preferences_updated_at: Date | string | null;
  deleted_at: Date | string | null;
  profile_in_flight: boolean;
  profile_overdue: boolean;
  preferences_in_flight: boolean;
  preferences_overdue: boolean;
}

// A profile key is invalidated by profile_updated and profile_deleted; a
// preferences key by preferences_updated and profile_deleted.
const SQL = `
WITH params AS (SELECT make_interval(secs => $3::double precision / 1000) AS win),
picked AS (
  SELECT DISTINCT user_id FROM (
    SELECT unnest($1::uuid[]) AS user_id
    UNION ALL
    -- Recent writes, a second old or more: where stale fills and lost DELs happen.
    (SELECT e.user_id FROM profile_events e
      WHERE $1::uuid[] IS NULL AND e.created_at < now() - interval '1 second'
      ORDER BY e.created_at DESC LIMIT $2)
    UNION ALL
    -- Invalidations later than the window: their keys may be served stale right now.
    (SELECT e.user_id FROM profile_events e, params
      WHERE $1::uuid[] IS NULL AND e.invalidated_at IS NULL AND e.created_at <= now() - params.win
      ORDER BY e.xid, e.id LIMIT $2)
    UNION ALL
    -- A random stretch of the keyspace: ids are random UUIDs, so this is an index range scan.
    (SELECT p.user_id FROM profiles p
      WHERE $1::uuid[] IS NULL AND p.user_id >= gen_random_uuid()
      ORDER BY p.user_id LIMIT $2)
  ) s
),
unfinished AS (
  SELECT e.user_id,
    bool_or(e.type <> 'preferences_updated' AND e.created_at > now() - params.win) AS profile_in_flight,
    bool_or(e.type <> 'preferences_updated' AND e.created_at <= now() - params.win) AS profile_overdue,
    bool_or(e.type <> 'profile_updated' AND e.created_at > now() - params.win) AS preferences_in_flight,
    bool_or(e.type <> 'profile_updated' AND e.created_at <= now() - params.win) AS preferences_overdue
  FROM profile_events e, params
  WHERE e.invalidated_at IS NULL AND e.user_id IN (SELECT user_id FROM picked)
  GROUP BY e.user_id
)
SELECT s.user_id::text AS user_id, now() AS checked_at,
  p.version::text AS profile_version, p.updated_at AS profile_updated_at,
  q.version::text AS preferences_version, q.updated_at AS preferences_updated_at,
  CASE WHEN p.user_id IS NULL OR q.user_id IS NULL THEN (
    SELECT e.created_at FROM profile_events e
    WHERE e.user_id = s.user_id AND e.type = 'profile_deleted'
    ORDER BY e.xid DESC, e.id DESC LIMIT 1) END AS deleted_at,
  coalesce(u.profile_in_flight, false) AS profile_in_flight,
  coalesce(u.profile_overdue, false) AS profile_overdue,
  coalesce(u.preferences_in_flight, false) AS preferences_in_flight,
  coalesce(u.preferences_overdue, false) AS preferences_overdue
FROM picked s
LEFT JOIN profiles p ON p.user_id = s.user_id
LEFT JOIN preferences q ON q.user_id = s.user_id
LEFT JOIN unfinished u ON u.user_id = s.user_id`;

export async function readCommitted(
  db: SqlExecutor,
  selection: Selection,
  inFlightWindowMs: number,
): Promise<Snapshot> {
  const params =
    "userIds" in selection ? [selection.userIds, 0, inFlightWindowMs] : [null, selection.sampleSize, inFlightWindowMs];
  const { rows } = await db.query<Row>(SQL, params);
  const users = new Map<string, UserState>();
  let at = new Date();
  for (const row of rows) {
    at = new Date(row.checked_at);
    const deletedAt = row.deleted_at === null ? null : new Date(row.deleted_at);
    users.set(row.user_id, {
      profile: state(
        row.profile_version,
        row.profile_updated_at,
        deletedAt,
        row.profile_in_flight,
        row.profile_overdue,
      ),
      preferences: state(
        row.preferences_version,
        row.preferences_updated_at,
        deletedAt,
        row.preferences_in_flight,
        row.preferences_overdue,
      ),
    });
  }
  return { at, users };
}

function state(
  version: string | null,
  updatedAt: Date | string | null,
  deletedAt: Date | null,
  inFlight: boolean,
  overdue: boolean,
): RowState {
  if (version === null) return { version: null, changedAt: deletedAt, inFlight, overdue };
  return { version: Number(version), changedAt: updatedAt === null ? null : new Date(updatedAt), inFlight, overdue };
}
