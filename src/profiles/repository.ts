// The SQL for profiles and preferences: their reads, and their write
// statements. A write is one statement that this file composes: the row's
// INSERT/UPDATE or DELETE, around two CTE fragments it takes from outbox.ts
// (`outboxSql.lockUser`, the user's write lock, and `outboxSql.appendFrom`,
// the event's INSERT), so a change and its event commit together or not at
// all, in one round trip. Every other outbox statement lives in outbox.ts.
// Parameterized only: column names come from the fixed maps below, never
// from requests.

import type { JsonObject } from "@bufbuild/protobuf";
import type { ChangeEvent } from "../events/change-event.js";
import { eventOf, outboxSql, type EventColumns, type NewChange } from "../events/outbox.js";
import type { Database, SqlExecutor } from "../store/database.js";
import { activeTraceparent } from "../tracing/tracing.js";
import { EtagMismatchError, NotFoundError } from "./errors.js";
import type { PreferencesPatch, PreferencesRecord, ProfilePatch, ProfileRecord } from "./records.js";

export interface Written<T> {
  record: T;
  event: ChangeEvent;
}

const PROFILE_COLUMNS = "user_id, first_name, last_name, bio, avatar_url, phone, created_at, updated_at, version";
const PREFERENCES_COLUMNS =
  "user_id, theme, language, email_notifications, push_notifications, settings, updated_at, version";

// Parameters in an INSERT ... SELECT list have no type context, so each is cast to its column's type.
const columnType: Record<string, string> = {
  first_name: "text",
  last_name: "text",
  bio: "text",
  avatar_url: "text",
  phone: "text",
  theme: "text",
  language: "text",
  email_notifications: "boolean",
  push_notifications: "boolean",
  settings: "jsonb",
};

const profileColumnOf: Record<keyof ProfilePatch, string> = {
  firstName: "first_name",
  lastName: "last_name",
  bio: "bio",
  avatarUrl: "avatar_url",
  phone: "phone",
};

const preferencesColumnOf: Record<keyof PreferencesPatch, string> = {
  theme: "theme",
  language: "language",
  emailNotifications: "email_notifications",
  pushNotifications: "push_notifications",
  settings: "settings",
};

interface ProfileRow {
  user_id: string;
  first_name: string;
  last_name: string;
  bio: string;
  avatar_url: string;
  phone: string;
  created_at: Date | string;
  updated_at: Date | string;
  version: string | number | bigint;
}

interface PreferencesRow {
  user_id: string;
  theme: string;
  language: string;
  email_notifications: boolean;
  push_notifications: boolean;
  settings: JsonObject | string;
  updated_at: Date | string;
  version: string | number | bigint;
}

export class ProfileRepository {
  constructor(private readonly db: Database) {}

  async getProfiles(userIds: readonly string[]): Promise<Map<string, ProfileRecord>> {
    const out = new Map<string, ProfileRecord>();
    for (const row of await selectByIds<ProfileRow>(this.db, "profiles", PROFILE_COLUMNS, userIds)) {
      out.set(row.user_id, toProfile(row));
    }
    return out;
  }

  async getPreferences(userIds: readonly string[]): Promise<Map<string, PreferencesRecord>> {
    const out = new Map<string, PreferencesRecord>();
    for (const row of await selectByIds<PreferencesRow>(this.db, "preferences", PREFERENCES_COLUMNS, userIds)) {
      out.set(row.user_id, toPreferences(row));
    }
    return out;
  }

  /** Creates or updates; with `expectedVersion`, only if it is current. */
  async upsertProfile(userId: string, patch: ProfilePatch, expectedVersion?: number): Promise<Written<ProfileRecord>> {
    const { columns, values } = inColumnOrder(patch, profileColumnOf);
    const change = { type: "profile_updated", userId, fields: columns } as const;
    const row = await write<ProfileRow>(this.db, "profiles", PROFILE_COLUMNS, change, values, expectedVersion);
    if (row === undefined) throw new EtagMismatchError("profile");
    return { record: toProfile(row), event: eventOf(row, change) };
  }

  /** Creates or updates; with `expectedVersion`, only if it is current. */
  async upsertPreferences(
    userId: string,
    patch: PreferencesPatch,
    expectedVersion?: number,
  ): Promise<Written<PreferencesRecord>> {
    const { columns, values } = inColumnOrder(
      { ...patch, ...(patch.settings === undefined ? {} : { settings: JSON.stringify(patch.settings) }) },
      preferencesColumnOf,
    );
    const change = { type: "preferences_updated", userId, fields: columns } as const;
    const row = await write<PreferencesRow>(
      this.db,
      "preferences",
      PREFERENCES_COLUMNS,
      change,
      values,
      expectedVersion,
    );
    if (row === undefined) throw new EtagMismatchError("preferences");
    return { record: toPreferences(row), event: eventOf(row, change) };
  }

  /** Deletes the profile and the user's preferences. */
  async deleteProfile(userId: string, expectedVersion?: number): Promise<ChangeEvent> {
    const change = { type: "profile_deleted", userId } as const;
    // One statement: lock, delete the profile (if its version matches), its
    // preferences, and append the event, all or nothing.
    const { rows } = await this.db.query<EventColumns>(
      `WITH ${outboxSql.lockUser("$1")},
       removed AS (
         DELETE FROM profiles p USING locked
         WHERE p.user_id = $1::uuid AND ($2::bigint IS NULL OR p.version = $2::bigint)
         RETURNING p.user_id),
       removed_preferences AS (
         DELETE FROM preferences WHERE user_id = $1::uuid AND EXISTS (SELECT 1 FROM removed)),
       ${outboxSql.appendFrom("removed", "$3", "'{}'", "$4")}
       SELECT event_id, event_xid, event_time FROM event`,
      [userId, expectedVersion ?? null, change.type, activeTraceparent()],
      { prepare: true },
    );
    const row = rows[0];
    if (row !== undefined) return eventOf(row, change);
    // Nothing deleted: say whether there was nothing, or the etag was stale.
    const { rowCount } = await this.db.query("SELECT 1 FROM profiles WHERE user_id = $1", [userId], { prepare: true });
    throw rowCount === 0 ? new NotFoundError("profile") : new EtagMismatchError("profile");
  }
}

/** One round trip for any number of ids; a single id gets the plain primary-key form. */
async function selectByIds<R>(
  db: SqlExecutor,
  table: "profiles" | "preferences",
  columns: string,
  userIds: readonly string[],
): Promise<R[]> {
  if (userIds.length === 0) return [];
  const { rows } =
    userIds.length === 1
      ? await db.query<R>(`SELECT ${columns} FROM ${table} WHERE user_id = $1`, [userIds[0]], { prepare: true })
      : await db.query<R>(`SELECT ${columns} FROM ${table} WHERE user_id = ANY($1::uuid[])`, [userIds], {
          prepare: true,
        });
  return rows;
}

/**
 * A patch's columns and values in the table's column order, whatever the
 * order of the update mask, so each column set has one statement text.
 */
function inColumnOrder<P extends object>(
  patch: P,
  columnOf: Record<keyof P, string>,
): { columns: string[]; values: unknown[] } {
  const columns: string[] = [];
  const values: unknown[] = [];
  for (const field of Object.keys(columnOf) as (keyof P)[]) {
    if (patch[field] === undefined) continue;
    columns.push(columnOf[field]);
    values.push(patch[field]);
  }
  return { columns, values };
}

/**
 * A row write and its event in one statement, behind the user's write lock.
 * Without an expected version: INSERT ... ON CONFLICT DO UPDATE (PUT
 * semantics). With one: a conditional UPDATE, which writes nothing (and
 * returns undefined) when the row is missing or its version differs.
 */
async function write<R>(
  db: SqlExecutor,
  table: "profiles" | "preferences",
  returning: string,
  change: NewChange & { fields: readonly string[] },
  values: readonly unknown[],
  expectedVersion: number | undefined,
): Promise<(R & EventColumns) | undefined> {
  const columns = change.fields;
  const params: unknown[] = [change.userId, ...values, change.type, columns, activeTraceparent()];
  const valueParams = columns.map((c, i) => `$${i + 2}::${columnType[c]}`);
  const typeParam = `$${columns.length + 2}`;
  const fieldsParam = `$${columns.length + 3}`;
  const traceParam = `$${columns.length + 4}`;
  const returned = returning
    .split(", ")
    .map((c) => `t.${c}`)
    .join(", ");
  let written: string;
  if (expectedVersion !== undefined) {
    params.push(expectedVersion);
    const sets = columns.map((c, i) => `${c} = ${valueParams[i]}`).join(", ");
    written = `UPDATE ${table} t SET ${sets}, updated_at = now(), version = nextval('row_version_seq')
       FROM locked WHERE t.user_id = $1::uuid AND t.version = $${params.length}::bigint
       RETURNING ${returned}`;
  } else {
    const sets = columns.map((c) => `${c} = EXCLUDED.${c}`).join(", ");
    written = `INSERT INTO ${table} AS t (user_id, ${columns.join(", ")}, version)
       SELECT $1::uuid, ${valueParams.join(", ")}, nextval('row_version_seq') FROM locked
       ON CONFLICT (user_id) DO UPDATE SET ${sets}, updated_at = now(), version = nextval('row_version_seq')
       RETURNING ${returned}`;
  }
  const { rows } = await db.query<R & EventColumns>(
    `WITH ${outboxSql.lockUser("$1")},
     written AS (${written}),
     ${outboxSql.appendFrom("written", typeParam, fieldsParam, traceParam)}
     SELECT written.*, event.event_id, event.event_xid, event.event_time FROM written CROSS JOIN event`,
    params,
    // One text per table, column set and etag-or-not: a bounded set.
    { prepare: true },
  );
  return rows[0];
}

function toProfile(row: ProfileRow): ProfileRecord {
  return {
    userId: row.user_id,
    firstName: row.first_name,
    lastName: row.last_name,
    bio: row.bio,
    avatarUrl: row.avatar_url,
    phone: row.phone,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    version: Number(row.version),
  };
}

function toPreferences(row: PreferencesRow): PreferencesRecord {
  return {
    userId: row.user_id,
    theme: row.theme,
    language: row.language,
    emailNotifications: row.email_notifications,
    pushNotifications: row.push_notifications,
    settings: typeof row.settings === "string" ? (JSON.parse(row.settings) as JsonObject) : row.settings,
    updatedAt: new Date(row.updated_at),
    version: Number(row.version),
  };
}
