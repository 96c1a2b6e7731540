// The SQL for the event outbox: reading in (xid, id) order below the
// watermark, relaying, marking done and pruning, and the identity of the event
// log that resume tokens are bound to. Events are appended by the writes
// themselves: this file only provides the fragments for that (`outboxSql`:
// the user's write lock and the event's INSERT, as CTEs), which
// profiles/repository.ts composes into each write's single statement.

import { randomBytes } from "node:crypto";
import { DatabaseBusyError, DatabaseUnavailableError, type Database, type SqlExecutor } from "../store/database.js";
import type { ChangeEvent, ChangeType } from "./change-event.js";
import type { Position } from "./position.js";
import { EVENT_LOG_ID_BYTES, EVENT_LOG_KEY_BYTES, type EventLogIdentity } from "./resume-token.js";

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
  trace_context: string | null;
}

const EVENT_COLUMNS =
  "e.id::text AS id, e.xid::text AS xid, e.type, e.user_id, e.updated_fields, e.created_at, e.trace_context";

// The two-int advisory lock space does not overlap the bigint one used by migrations.
const LOCK_NAMESPACE = 1347;
const PRUNE_LOCK = 1;
const IDENTITY_LOCK = 2;

/** Why the event log got a new identity (every resume token issued before is refused). */
export type IdentityRenewal = "first start" | "another cluster" | "another database" | "transaction ids went back";

interface IdentityRow {
  log_id: Uint8Array;
  key: Uint8Array;
  system_identifier: string | null;
  database_oid: string;
  checked_xid: string;
}

export class Outbox {
  constructor(private readonly db: Database) {}

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
   * The identity resume tokens are bound to, the same for every replica. It is
   * made on first start and made again (refusing every token issued before)
   * whenever the database turns out to be another one than the one that made
   * it, since positions from there mean nothing here:
   * - another cluster (its system identifier): a dump restored into a new
   *   cluster, whose transaction ids start again from the beginning;
   * - another database of the same cluster: a copy, or a dump restored next to
   *   the original (CREATE DATABASE … TEMPLATE, pg_restore into a new database);
   * - transaction ids lower than at the last check: a restore that the two
   *   above cannot see (say, where pg_control_system() is not allowed).
   * Physical replicas and failover keep the cluster's identifier, so tokens
   * survive them.
   */
  async eventLog(): Promise<EventLogIdentity & { renewed: IdentityRenewal | undefined }> {
    const systemId = await this.systemIdentifier();
    return this.db.transaction(async (tx) => {
      // One replica at a time, so the transaction id below is newer than any check another replica recorded.
      await tx.query("SELECT pg_advisory_xact_lock($1, $2)", [LOCK_NAMESPACE, IDENTITY_LOCK]);
      const { rows: here } = await tx.query<{ database_oid: string; xid: string }>(
        `SELECT d.oid::text AS database_oid, pg_current_xact_id()::text AS xid
         FROM pg_database d WHERE d.datname = current_database()`,
      );
      const { database_oid: databaseOid, xid } = here[0]!;
      const { rows } = await tx.query<IdentityRow>(
        `SELECT log_id, key, system_identifier, database_oid::text AS database_oid, checked_xid::text AS checked_xid
         FROM event_log_identity`,
      );
      const stored = rows[0];
      const renewed: IdentityRenewal | undefined =
        stored === undefined
          ? "first start"
          : systemId !== undefined && stored.system_identifier !== null && stored.system_identifier !== systemId
            ? "another cluster"
            : stored.database_oid !== databaseOid
              ? "another database"
              : BigInt(stored.checked_xid) >= BigInt(xid)
                ? "transaction ids went back"
                : undefined;
      if (stored !== undefined && renewed === undefined) {
        await tx.query(
          `UPDATE event_log_identity
           SET checked_xid = pg_current_xact_id(), system_identifier = coalesce($1, system_identifier)`,
          [systemId ?? null],
        );
        return { id: Buffer.from(stored.log_id), key: Buffer.from(stored.key), renewed };
      }
      const id = randomBytes(EVENT_LOG_ID_BYTES);
      const key = randomBytes(EVENT_LOG_KEY_BYTES);
      await tx.query(
        `INSERT INTO event_log_identity (singleton, log_id, key, system_identifier, database_oid, checked_xid)
         VALUES (true, $1, $2, $3, $4::oid, pg_current_xact_id())
         ON CONFLICT (singleton) DO UPDATE SET log_id = EXCLUDED.log_id, key = EXCLUDED.key,
           system_identifier = EXCLUDED.system_identifier, database_oid = EXCLUDED.database_oid,
           checked_xid = EXCLUDED.checked_xid, created_at = now()`,
        [id, key, systemId ?? null, databaseOid],
      );
      return { id, key, renewed };
    });
  }

  /** The cluster's system identifier, or undefined where the server does not let us read it. */
  private async systemIdentifier(): Promise<string | undefined> {
    try {
      const { rows } = await this.db.query<{ id: string }>(
        "SELECT system_identifier::text AS id FROM pg_control_system()",
      );
      return rows[0]?.id ?? undefined;
    } catch (err) {
      // Only "not allowed here" means "unknown"; a database we cannot reach must fail startup as usual.
      if (err instanceof DatabaseUnavailableError || err instanceof DatabaseBusyError) throw err;
      return undefined;
    }
  }

  /**
   * Hands `deliver` the committed events nobody has finished (invalidated
   * their keys and published them) and that are older than `graceMs` (the
   * writer had its chance), in (xid, id) order, and marks done the ids it
   * returns. SKIP LOCKED lets every replica run this at once without two of
   * them taking the same rows. Returns how many rows were taken and how many
   * were finished.
   */
  async relay(
    graceMs: number,
    limit: number,
    deliver: (events: ChangeEvent[]) => Promise<string[]>,
  ): Promise<{ taken: number; done: number }> {
    // Most passes find nothing: one statement then, not a transaction.
    const { rows: due } = await this.db.query<{ due: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM profile_events e WHERE ${OVERDUE}) AS due`,
      [graceMs],
    );
    if (!due[0]?.due) return { taken: 0, done: 0 };
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM profile_events e WHERE ${OVERDUE}
         ORDER BY e.xid, e.id LIMIT $2
         FOR UPDATE SKIP LOCKED`,
        [graceMs, limit],
      );
      if (rows.length === 0) return { taken: 0, done: 0 };
      const done = await deliver(rows.map(toEvent));
      if (done.length > 0) await markInvalidated(tx, done);
      return { taken: rows.length, done: done.length };
    });
  }

  /**
   * Like `relay`, for events whose writer saw them fail: no grace. Of
   * `eventIds`, it locks the rows no other replica holds (SKIP LOCKED, as
   * `relay` does, so two replicas never finish one event at once), hands
   * `deliver` those not done yet, and marks done the ids it returns. Returns
   * those, and the events it found done already (another replica's relay
   * finished them). Ids in neither are held by another replica right now.
   */
  async finish(
    eventIds: readonly string[],
    deliver: (events: ChangeEvent[]) => Promise<string[]>,
  ): Promise<{ delivered: string[]; doneBefore: ChangeEvent[] }> {
    if (eventIds.length === 0) return { delivered: [], doneBefore: [] };
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<EventRow & { done: boolean }>(
        `SELECT ${EVENT_COLUMNS}, e.invalidated_at IS NOT NULL AS done FROM profile_events e
         WHERE e.id = ANY($1::bigint[])
         ORDER BY e.xid, e.id
         FOR UPDATE SKIP LOCKED`,
        [eventIds],
      );
      const pending = rows.filter((r) => !r.done).map(toEvent);
      const delivered = pending.length === 0 ? [] : await deliver(pending);
      if (delivered.length > 0) await markInvalidated(tx, delivered);
      return { delivered, doneBefore: rows.filter((r) => r.done).map(toEvent) };
    });
  }

  /** Records that these events are done: their keys were invalidated and they were published. */
  async markInvalidated(eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await markInvalidated(this.db, eventIds);
  }

  /** True when every event with an id up to `eventId` is done, whoever finished it. */
  async invalidatedThrough(eventId: bigint): Promise<boolean> {
    const { rows } = await this.db.query<{ done: boolean }>(
      `SELECT NOT EXISTS (
         SELECT 1 FROM profile_events WHERE invalidated_at IS NULL AND id <= $1::bigint) AS done`,
      [eventId.toString()],
    );
    return rows[0]?.done ?? false;
  }

  /**
   * Deletes events older than the retention, never past the oldest one not
   * yet done (invalidated and published), and records how far it went. One
   * replica at a time.
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
             WHERE u.invalidated_at IS NULL AND (u.xid, u.id) <= (e.xid, e.id))
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

// Not done, and old enough that its writer would have finished it by now.
const OVERDUE =
  "e.invalidated_at IS NULL AND e.created_at < now() - make_interval(secs => $1::double precision / 1000)";

function markInvalidated(executor: SqlExecutor, eventIds: readonly string[]): Promise<unknown> {
  return executor.query(
    "UPDATE profile_events SET invalidated_at = now() WHERE id = ANY($1::bigint[]) AND invalidated_at IS NULL",
    [eventIds],
  );
}

/** The arguments of a user's write lock in pg_advisory_*lock (tests hold it to keep a write in flight). */
export function userLockKey(userIdParam: string): string {
  return `${LOCK_NAMESPACE}, hashtext(${userIdParam}::text)`;
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
  lockUser: (userIdParam: string) => `locked AS (SELECT pg_advisory_xact_lock(${userLockKey(userIdParam)}) AS held)`,
  /**
   * A CTE named `event` appending one event per row of `source` (which
   * returns user_id); `traceParam` is the write's traceparent (or NULL).
   */
  appendFrom: (source: string, typeParam: string, fieldsParam: string, traceParam = "NULL") =>
    `event AS (
       INSERT INTO profile_events (type, user_id, updated_fields, trace_context)
       SELECT ${typeParam}::text, ${source}.user_id, ${fieldsParam}::text[], ${traceParam}::text FROM ${source}
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
    ...(row.trace_context === null ? {} : { traceContext: row.trace_context }),
  };
}

// Some drivers return text[] as its literal, e.g. {first_name,bio}. Field names never need quoting.
function parseTextArray(literal: string): string[] {
  const inner = literal.replace(/^\{|\}$/g, "");
  return inner === "" ? [] : inner.split(",");
}
