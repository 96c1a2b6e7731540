// Real PostgreSQL and Redis for tests, as global-setup.ts chose them
// (TEST_DATABASE_URL / TEST_REDIS_URL, the local servers, or private ones).
// Each test file gets its own database and key prefix.

import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

export const adminDatabaseUrl = inject("testDatabaseUrl");
export const testRedisUrl = inject("testRedisUrl");

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

export function uniqueName(label: string): string {
  return `${label.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${randomBytes(4).toString("hex")}`;
}

/** Creates a fresh, empty database for one test file. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `ps_test_${uniqueName(label)}`.slice(0, 63);
  await adminQuery(`CREATE DATABASE "${name}"`);
  const url = new URL(adminDatabaseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      await untilNoSessions(name);
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/**
 * pg's `Pool.end()` resolves once it has asked its connections to close, not
 * once they have. A FORCE drop in that moment terminates them, and each pool
 * then emits an `error` that nothing listens for any more: an uncaught
 * exception that fails the whole run. So the drop waits (briefly) for the
 * sessions to go, and forces only what is left after that.
 */
async function untilNoSessions(database: string, timeoutMs = 5000): Promise<void> {
  const client = new pg.Client({ connectionString: adminDatabaseUrl });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1",
        [database],
      );
      if (rows[0]!.n === 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await client.end();
  }
}

/** Runs `sql` on the admin database (CREATE and DROP DATABASE). */
export async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminDatabaseUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A key prefix no other test file uses. */
export function uniqueKeyPrefix(label: string): string {
  return `test:${uniqueName(label)}:`;
}
