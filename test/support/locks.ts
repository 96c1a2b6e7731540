// Seeing from PostgreSQL itself that a call is blocked on a lock a test holds.

import type pg from "pg";

/** Backends of this database waiting on a lock, counted through `client`. */
export async function waitingOnLocks(client: pg.Client | pg.Pool): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
  );
  return rows[0]!.n;
}
