// Counts PostgreSQL reads of `profiles` from the server's side, so the count
// covers every instance and does not trust the service's own bookkeeping.
//
// pg_stat_statements would be the precise tool, but it must be preloaded and
// the shared server would need a restart. The cumulative table statistics
// (seq_scan + idx_scan of `profiles`) are always on; a backend publishes its
// counts when it exits (or up to 10 s after it goes idle), so the caller stops
// the instances, and we wait for their backends to go before reading.

import pg from "pg";
import { sleep } from "./child.js";

export async function profileTableScans(dbUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    await client.query("SELECT pg_stat_clear_snapshot()");
    const { rows } = await client.query<{ scans: string }>(
      `SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS scans
       FROM pg_stat_user_tables WHERE relname = 'profiles'`,
    );
    return Number(rows[0]?.scans ?? 0);
  } finally {
    await client.end();
  }
}

/**
 * The scan count once no other session is connected to the database and the
 * count has stopped moving: every exited backend's counts are then published.
 */
export async function settledProfileTableScans(dbUrl: string, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const dbName = decodeURIComponent(new URL(dbUrl).pathname.slice(1));
  while ((await otherSessions(dbUrl, dbName)) > 0) {
    if (Date.now() > deadline) throw new Error(`sessions on ${dbName} did not close within ${timeoutMs} ms`);
    await sleep(100);
  }
  let last = await profileTableScans(dbUrl);
  for (;;) {
    await sleep(300);
    const now = await profileTableScans(dbUrl);
    if (now === last || Date.now() > deadline) return now;
    last = now;
  }
}

async function otherSessions(dbUrl: string, dbName: string): Promise<number> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
      [dbName],
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}
