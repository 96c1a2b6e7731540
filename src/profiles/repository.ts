// All SQL for profiles and preferences. Parameterized only: column names come
// from the fixed maps below, never from requests.

import type { JsonObject } from "@bufbuild/protobuf";
import type { ChangeEvent } from "../events/change-event.js";
import { lockUser, type EventRecorder } from "../events/outbox.js";
import type { Database, SqlExecutor } from "../store/database.js";
import { EtagMismatchError, NotFoundError } from "./errors.js";
import type { PreferencesPatch, PreferencesRecord, ProfilePatch, ProfileRecord } from "./records.js";

/**
 * Every write runs in one transaction that also appends its event to the
 * outbox, so a change and its event commit together or not at all.
 */
export interface ProfileStore {
  getProfiles(userIds: readonly string[]): Promise<Map<string, ProfileRecord>>;
  getPreferences(userIds: readonly string[]): Promise<Map<string, PreferencesRecord>>;
  /** Creates or updates; with `expectedVersion`, only if it is current. */
  upsertProfile(userId: string, patch: ProfilePatch, expectedVersion?: number): Promise<Written<ProfileRecord>>;
  upsertPreferences(
    userId: string,
    patch: PreferencesPatch,
    expectedVersion?: number,
  ): Promise<Written<PreferencesRecord>>;
  /** Deletes the profile and the user's preferences. */
  deleteProfile(userId: string, expectedVersion?: number): Promise<ChangeEvent>;
}

export interface Written<T> {
  record: T;
  event: ChangeEvent;
}

const PROFILE_COLUMNS = "user_id, first_name, last_name, bio, avatar_url, phone, created_at, updated_at, version";
const PREFERENCES_COLUMNS =
  "user_id, theme, language, email_notifications, push_notifications, settings, updated_at, version";

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

export class SqlProfileStore implements ProfileStore {
  constructor(
    private readonly db: Database,
    private readonly events: EventRecorder,
  ) {}

  async getProfiles(userIds: readonly string[]): Promise<Map<string, ProfileRecord>> {
    const out = new Map<string, ProfileRecord>();
    if (userIds.length === 0) return out;
    const { rows } =
      userIds.length === 1
        ? await this.db.query<ProfileRow>(`SELECT ${PROFILE_COLUMNS} FROM profiles WHERE user_id = $1`, [userIds[0]])
        : await this.db.query<ProfileRow>(`SELECT ${PROFILE_COLUMNS} FROM profiles WHERE user_id = ANY($1::uuid[])`, [
            userIds,
          ]);
    for (const row of rows) out.set(row.user_id, toProfile(row));
    return out;
  }

  async getPreferences(userIds: readonly string[]): Promise<Map<string, PreferencesRecord>> {
    const out = new Map<string, PreferencesRecord>();
    if (userIds.length === 0) return out;
    const { rows } =
      userIds.length === 1
        ? await this.db.query<PreferencesRow>(`SELECT ${PREFERENCES_COLUMNS} FROM preferences WHERE user_id = $1`, [
            userIds[0],
          ])
        : await this.db.query<PreferencesRow>(
            `SELECT ${PREFERENCES_COLUMNS} FROM preferences WHERE user_id = ANY($1::uuid[])`,
            [userIds],
          );
    for (const row of rows) out.set(row.user_id, toPreferences(row));
    return out;
  }

  async upsertProfile(userId: string, patch: ProfilePatch, expectedVersion?: number): Promise<Written<ProfileRecord>> {
    const columns = Object.keys(patch).map((k) => profileColumnOf[k as keyof ProfilePatch]);
    const values = Object.values(patch);
    return this.db.transaction(async (tx) => {
      await lockUser(tx, userId);
      const row = await upsert<ProfileRow>(tx, "profiles", PROFILE_COLUMNS, userId, columns, values, expectedVersion);
      if (row === undefined) throw new EtagMismatchError("profile");
      const event = await this.events.append(tx, { type: "profile_updated", userId, fields: columns });
      return { record: toProfile(row), event };
    });
  }

  async upsertPreferences(
    userId: string,
    patch: PreferencesPatch,
    expectedVersion?: number,
  ): Promise<Written<PreferencesRecord>> {
    const columns = Object.keys(patch).map((k) => preferencesColumnOf[k as keyof PreferencesPatch]);
    const values = Object.entries(patch).map(([k, v]) => (k === "settings" ? JSON.stringify(v) : v));
    return this.db.transaction(async (tx) => {
      await lockUser(tx, userId);
      const row = await upsert<PreferencesRow>(
        tx,
        "preferences",
        PREFERENCES_COLUMNS,
        userId,
        columns,
        values,
        expectedVersion,
      );
      if (row === undefined) throw new EtagMismatchError("preferences");
      const event = await this.events.append(tx, { type: "preferences_updated", userId, fields: columns });
      return { record: toPreferences(row), event };
    });
  }

  async deleteProfile(userId: string, expectedVersion?: number): Promise<ChangeEvent> {
    return this.db.transaction(async (tx) => {
      await lockUser(tx, userId);
      const { rows } = await tx.query<{ version: string }>(
        "DELETE FROM profiles WHERE user_id = $1 RETURNING version",
        [userId],
      );
      const deleted = rows[0];
      if (deleted === undefined) throw new NotFoundError("profile");
      // Checked after the DELETE so the row lock makes check-and-delete atomic;
      // throwing rolls the delete back.
      if (expectedVersion !== undefined && Number(deleted.version) !== expectedVersion) {
        throw new EtagMismatchError("profile");
      }
      await tx.query("DELETE FROM preferences WHERE user_id = $1", [userId]);
      return this.events.append(tx, { type: "profile_deleted", userId });
    });
  }
}

/**
 * Without an expected version: INSERT ... ON CONFLICT DO UPDATE (PUT semantics).
 * With one: a conditional UPDATE, which returns nothing when the row is missing
 * or its version differs.
 */
async function upsert<R>(
  tx: SqlExecutor,
  table: "profiles" | "preferences",
  returning: string,
  userId: string,
  columns: readonly string[],
  values: readonly unknown[],
  expectedVersion: number | undefined,
): Promise<R | undefined> {
  const params = [userId, ...values];
  const placeholders = columns.map((_, i) => `$${i + 2}`);
  if (expectedVersion !== undefined) {
    const sets = columns.map((c, i) => `${c} = ${placeholders[i]}`).join(", ");
    const { rows } = await tx.query<R>(
      `UPDATE ${table} SET ${sets}, updated_at = now(), version = nextval('row_version_seq')
       WHERE user_id = $1 AND version = $${params.length + 1}
       RETURNING ${returning}`,
      [...params, expectedVersion],
    );
    return rows[0];
  }
  const sets = columns.map((c) => `${c} = EXCLUDED.${c}`).join(", ");
  const { rows } = await tx.query<R>(
    `INSERT INTO ${table} (user_id, ${columns.join(", ")}, version)
     VALUES ($1, ${placeholders.join(", ")}, nextval('row_version_seq'))
     ON CONFLICT (user_id) DO UPDATE SET ${sets}, updated_at = now(), version = nextval('row_version_seq')
     RETURNING ${returning}`,
    params,
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
