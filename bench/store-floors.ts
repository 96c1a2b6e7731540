// The store floors, measured from the bench process with the same client
// libraries and settings the service uses: F-redis (ioredis GET), F-pg (pg
// primary-key SELECT) and F-write (pg BEGIN / UPDATE / COMMIT). The SQL runs
// as named (prepared) statements, as the service's hot statements do, so a
// floor is never slower than the service's own way of doing the same thing.

import type { Cluster, Redis } from "ioredis";
import type pg from "pg";

// The service's own column list, so F-pg moves the same bytes as a miss.
const PROFILE_COLUMNS = "user_id, first_name, last_name, bio, avatar_url, phone, created_at, updated_at, version";

export function redisGet(redis: Redis | Cluster, key: string): () => Promise<void> {
  return async () => {
    if ((await redis.get(key)) === null) throw new Error(`F-redis: ${key} is not cached`);
  };
}

export function pgSelectByKey(pool: pg.Pool, id: () => string): () => Promise<void> {
  return async () => {
    const { rowCount } = await pool.query({
      name: "floor_select",
      text: `SELECT ${PROFILE_COLUMNS} FROM profiles WHERE user_id = $1`,
      values: [id()],
    });
    if (rowCount !== 1) throw new Error("F-pg: row not found");
  };
}

/** The same row change UpdateProfile makes for a one-field mask, in its own transaction. */
export function pgUpdateTransaction(pool: pg.Pool, id: () => string): (seq: number) => Promise<void> {
  return async (seq) => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const { rowCount } = await client.query({
        name: "floor_update",
        text: `UPDATE profiles SET first_name = $2, updated_at = now(), version = nextval('row_version_seq')
         WHERE user_id = $1 RETURNING ${PROFILE_COLUMNS}`,
        values: [id(), `Floor${seq}`],
      });
      await client.query("COMMIT");
      if (rowCount !== 1) throw new Error("F-write: row not found");
    } finally {
      client.release();
    }
  };
}
