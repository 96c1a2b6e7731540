// An outbox event with no change behind it, appended inside the caller's
// transaction: for tests that need events committed in a chosen order, or
// committed with nobody to finish them (a writer that crashed after COMMIT).
// It uses the same fragment as the writes (outboxSql.appendFrom), without the
// user's write lock, so two open transactions can each append for one user.

import type { ChangeEvent } from "../../src/events/change-event.js";
import { eventOf, outboxSql, type EventColumns, type NewChange } from "../../src/events/outbox.js";
import type { SqlExecutor } from "../../src/store/database.js";

export async function appendEvent(tx: SqlExecutor, change: NewChange): Promise<ChangeEvent> {
  const fields = change.type === "profile_deleted" ? [] : [...change.fields];
  const { rows } = await tx.query<EventColumns>(
    `WITH source AS (SELECT $1::uuid AS user_id), ${outboxSql.appendFrom("source", "$2", "$3")}
     SELECT event_id, event_xid, event_time FROM event`,
    [change.userId, change.type, fields],
  );
  return eventOf(rows[0]!, change);
}
