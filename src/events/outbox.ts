// All SQL for the event outbox: appending inside write transactions, reading
// in (xid, id) order below the watermark, relaying, marking and pruning.

import type { Database, SqlExecutor } from "../store/database.js";
import type { ChangeEvent, ChangeType } from "./change-event.js";
import type { Position } from "./position.js";

export interface EventFilter {
  readonly userIds?: readonly string[];
  readonly types?: readonly ChangeType[];
}

export type NewChange =
  | { type: "profile_updated"; userId: string; fields: readonly string[] }
  | { type: "profile_deleted"; userId: string }
  | { type: "preferences_updated"; userId: string; fields: readonly string[] };


interface EventRow {
  id: string;
  xid: string;
  type: ChangeType;
  user_id: string;
  updated_fields: string[] | string;
  created_at: Date | string;
}

const EVENT_COLUMNS = "e.id::text AS id, e.xid::text AS xid, e.type, e.user_id, e.updated_fields, e.created_at";

// The two-int advisory lock space does not overlap the bigint one used by migrations.
const LOCK_NAMESPACE = 1347;
const PRUNE_LOCK = 1;

export class Outbox {
  constructor(private readonly db: Database) {}

  /** Appends an event inside a caller's transaction (writes use `outboxSql` to do it in one statement). */
  async append(tx: SqlExecutor, change: NewChange): Promise<ChangeEvent> {
    const fields = change.type === "profile_deleted" ? [] : [...change.fields];
    const { rows } = await tx.query<{ id: string; xid: string; created_at: Date | string }>(
      `INSERT INTO profile_events (type, user_id, updated_fields) VALUES ($1, $2, $3::text[])
       RETURNING id::text AS id, xid::text AS xid, created_at`,
      [change.type, change.userId, fields],
    );
    const row = rows[0]!;
    return {
      eventId: row.id,
      position: { xid: BigInt(row.xid), id: BigInt(row.id) },
      type: change.type,
      userId: change.userId,
      updatedFields: fields,
      time: new Date(row.created_at),
    };
  }

  /**
   * Events after `after`, in (xid, id) order, only from transactions older
   * than every transaction still running, so nothing can commit behind them.
   * Also returns the watermark: when fewer than `limit` events come back,
   * every event before (watermark, 0) has been read.
   */
  async readAfter(
    after: Position,
    limit: number,
    options: { upTo?: Position; filter?: EventFilter } = {},
  ): Promise<{ events: ChangeEvent[]; watermark: Position }> {
    const params: unknown[] = [after.xid.toString(), after.id.toString(), limit];
    const conditions = ["(e.xid, e.id) > ($1::xid8, $2::bigint)", "e.xid < w.xmin"];
    if (options.upTo !== undefined) {
      params.push(options.upTo.xid.toString(), options.upTo.id.toString());
      conditions.push(`(e.xid, e.id) <= ($${params.length - 1}::xid8, $${params.length}::bigint)`);
    }
    if (options.filter?.userIds !== undefined && options.filter.userIds.length > 0) {
      params.push(options.filter.userIds);
      conditions.push(`e.user_id = ANY($${params.length}::uuid[])`);
    }
    if (options.filter?.types !== undefined && options.filter.types.length > 0) {
      params.push(options.filter.types);
      conditions.push(`e.type = ANY($${params.length}::text[])`);
    }
    const { rows } = await this.db.query<EventRow & { xmin: string }>(
      `WITH w AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
       SELECT w.xmin::text AS xmin, page.* FROM w LEFT JOIN LATERAL (
         SELECT ${EVENT_COLUMNS} FROM profile_events e
         WHERE ${conditions.join(" AND ")}
         ORDER BY e.xid, e.id LIMIT $3
       ) page ON true`,
      params,
    );
    const watermark = { xid: BigInt(rows[0]!.xmin), id: 0n };
    const events = rows.filter((r) => r.id !== null).map(toEvent);
    return { events, watermark };
  }

  /** The newest position retention has deleted, if any. */
  async prunedThrough(): Promise<Position | undefined> {
    const { rows } = await this.db.query<{ xid: string; id: string }>(
      "SELECT xid::text AS xid, id::text AS id FROM profile_events_pruned",
    );
    const row = rows[0];
    return row === undefined ? undefined : { xid: BigInt(row.xid), id: BigInt(row.id) };
  }

  /**
   * Publishes committed events nobody marked as published and that are older
   * than `graceMs` (the writer had its chance). SKIP LOCKED lets every replica
   * run this at once without two of them taking the same rows.
   */
  async relay(graceMs: number, limit: number, publish: (events: ChangeEvent[]) => Promise<string[]>): Promise<number> {
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM profile_events e
         WHERE e.published_at IS NULL AND e.created_at < now() - make_interval(secs => $1::double precision / 1000)
         ORDER BY e.xid, e.id LIMIT $2
         FOR UPDATE SKIP LOCKED`,
        [graceMs, limit],
      );
      if (rows.length === 0) return 0;
      const published = await publish(rows.map(toEvent));
      if (published.length > 0) {
        await tx.query("UPDATE profile_events SET published_at = now() WHERE id = ANY($1::bigint[])", [published]);
      }
      return published.length;
    });
  }

  async markPublished(eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.db.query(
      "UPDATE profile_events SET published_at = now() WHERE id = ANY($1::bigint[]) AND published_at IS NULL",
      [eventIds],
    );
  }

  /**
   * Deletes events older than the retention, never past the oldest unpublished
   * one, and records how far it went. One replica at a time.
   */
  async prune(retentionHours: number, batchSize = 10_000): Promise<number> {
    return this.db.transaction(async (tx) => {
      const { rows: lock } = await tx.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1, $2) AS ok", [
        LOCK_NAMESPACE,
        PRUNE_LOCK,
      ]);
      if (!lock[0]?.ok) return 0;
      const { rows } = await tx.query<{ xid: string; id: string }>(
        `SELECT e.xid::text AS xid, e.id::text AS id FROM profile_events e
         WHERE e.created_at < now() - make_interval(hours => $1)
           AND NOT EXISTS (
             SELECT 1 FROM profile_events u
             WHERE u.published_at IS NULL AND (u.xid, u.id) <= (e.xid, e.id))
         ORDER BY e.xid DESC, e.id DESC LIMIT 1`,
        [retentionHours],
      );
      const cutoff = rows[0];
      if (cutoff === undefined) return 0;
      let deleted = 0;
      for (;;) {
        const { rowCount } = await tx.query(
          `DELETE FROM profile_events WHERE id IN (
             SELECT id FROM profile_events WHERE (xid, id) <= ($1::xid8, $2::bigint) ORDER BY xid, id LIMIT $3)`,
          [cutoff.xid, cutoff.id, batchSize],
        );
        deleted += rowCount;
        if (rowCount < batchSize) break;
      }
      await tx.query(
        `INSERT INTO profile_events_pruned (singleton, xid, id) VALUES (true, $1::xid8, $2::bigint)
         ON CONFLICT (singleton) DO UPDATE SET xid = EXCLUDED.xid, id = EXCLUDED.id, pruned_at = now()
         WHERE (profile_events_pruned.xid, profile_events_pruned.id) < (EXCLUDED.xid, EXCLUDED.id)`,
        [cutoff.xid, cutoff.id],
      );
      return deleted;
    });
  }
}

/**
 * SQL pieces for writing a change and its event in one statement: one round
 * trip, in autocommit, so the change and its event commit together.
 */
export const outboxSql = {
  /**
   * A CTE named `locked` that takes the user's write lock. Every write for a
   * user reads from it before writing, so a user's writes run one at a time
   * and get their xids, and so their outbox positions, in commit order.
   */
  lockUser: (userIdParam: string) =>
    `locked AS (SELECT pg_advisory_xact_lock(${LOCK_NAMESPACE}, hashtext(${userIdParam}::text)) AS held)`,
  /** A CTE named `event` appending one event per row of `source` (which returns user_id). */
  appendFrom: (source: string, typeParam: string, fieldsParam: string) =>
    `event AS (
       INSERT INTO profile_events (type, user_id, updated_fields)
       SELECT ${typeParam}::text, ${source}.user_id, ${fieldsParam}::text[] FROM ${source}
       RETURNING id::text AS event_id, xid::text AS event_xid, created_at AS event_time)`,
};

/** The columns `outboxSql.appendFrom` adds to a statement's result. */
export interface EventColumns {
  event_id: string;
  event_xid: string;
  event_time: Date | string;
}

export function eventOf(row: EventColumns, change: NewChange): ChangeEvent {
  return {
    eventId: row.event_id,
    position: { xid: BigInt(row.event_xid), id: BigInt(row.event_id) },
    type: change.type,
    userId: change.userId,
    updatedFields: change.type === "profile_deleted" ? [] : [...change.fields],
    time: new Date(row.event_time),
  };
}

function toEvent(row: EventRow): ChangeEvent {
  return {
    eventId: row.id,
    position: { xid: BigInt(row.xid), id: BigInt(row.id) },
    type: row.type,
    userId: row.user_id,
    updatedFields: typeof row.updated_fields === "string" ? parseTextArray(row.updated_fields) : row.updated_fields,
    time: new Date(row.created_at),
  };
}

// Some drivers return text[] as its literal, e.g. {first_name,bio}. Field names never need quoting.
function parseTextArray(literal: string): string[] {
  const inner = literal.replace(/^\{|\}$/g, "");
  return inner === "" ? [] : inner.split(",");
}
