// A fresh database per run, with the service's own schema (its migrations) and
// N profiles inserted server-side in batches, so seeding a million rows costs
// seconds rather than a million round trips.

import pg from "pg";
import { migrate } from "../src/store/migrations.js";
import { PgDatabase } from "../src/store/pg-database.js";
import { SQL_PROFILE_ID } from "./ids.js";

const BATCH_ROWS = 50_000;

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(adminUrl: string, name: string): Promise<BenchDatabase> {
  await adminQuery(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await adminQuery(adminUrl, `CREATE DATABASE "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/**
 * Applies the service's migrations, then inserts profiles 0..count-1. Field
 * sizes resemble a real profile (a bio of about a hundred characters), since
 * the cached JSON size drives the hit path's cost.
 */
export async function seedProfiles(
  url: string,
  count: number,
  onProgress: (done: number) => void = () => {},
): Promise<void> {
  const db = new PgDatabase({ connectionString: url, max: 1, statementTimeoutMs: 600_000 });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Bulk load without waiting for each batch's WAL flush; the data is throwaway.
    await client.query("SET synchronous_commit = off");
    for (let lo = 0; lo < count; lo += BATCH_ROWS) {
      const hi = Math.min(lo + BATCH_ROWS, count) - 1;
      await client.query(
        `INSERT INTO profiles (user_id, first_name, last_name, bio, avatar_url, phone, version)
         SELECT ${SQL_PROFILE_ID("i")}, 'First' || i, 'Last' || i,
                'Bench profile ' || i || ': likes distributed systems, coffee, and long walks on the beach.',
                'https://cdn.example.com/avatars/' || i || '.png',
                '+81-90-' || lpad((i % 10000)::text, 4, '0') || '-' || lpad((i / 10000 % 10000)::text, 4, '0'),
                nextval('row_version_seq')
         FROM generate_series($1::int, $2::int) AS i`,
        [lo, hi],
      );
      onProgress(hi + 1);
    }
    await client.query("VACUUM ANALYZE profiles");
  } finally {
    await client.end();
  }
}

export async function adminQuery(adminUrl: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}
