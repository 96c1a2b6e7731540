// The cached JSON keeps the seed's shape (snake_case, ISO-8601 times) plus the
// row version, so services that read these keys directly keep working.

import type { JsonObject } from "@bufbuild/protobuf";
import type { PreferencesRecord, ProfileRecord } from "./records.js";

export function encodeProfile(p: ProfileRecord): string {
  return JSON.stringify({
    user_id: p.userId,
    first_name: p.firstName,
    last_name: p.lastName,
    bio: p.bio,
    avatar_url: p.avatarUrl,
    phone: p.phone,
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
    version: p.version,
  });
}

export function decodeProfile(json: string): ProfileRecord {
  const v = JSON.parse(json) as Record<string, unknown>;
  return {
    userId: str(v.user_id),
    firstName: str(v.first_name),
    lastName: str(v.last_name),
    bio: str(v.bio),
    avatarUrl: str(v.avatar_url),
    phone: str(v.phone),
    createdAt: date(v.created_at),
    updatedAt: date(v.updated_at),
    version: num(v.version),
  };
}

export function encodePreferences(p: PreferencesRecord): string {
  return JSON.stringify({
    user_id: p.userId,
    theme: p.theme,
    language: p.language,
    email_notifications: p.emailNotifications,
    push_notifications: p.pushNotifications,
    settings: p.settings,
    updated_at: p.updatedAt.toISOString(),
    version: p.version,
  });
}

export function decodePreferences(json: string): PreferencesRecord {
  const v = JSON.parse(json) as Record<string, unknown>;
  if (typeof v.email_notifications !== "boolean" || typeof v.push_notifications !== "boolean") {
    throw new TypeError("cached preferences: notification flags must be booleans");
  }
  if (typeof v.settings !== "object" || v.settings === null || Array.isArray(v.settings)) {
    throw new TypeError("cached preferences: settings must be an object");
  }
  return {
    userId: str(v.user_id),
    theme: str(v.theme),
    language: str(v.language),
    emailNotifications: v.email_notifications,
    pushNotifications: v.push_notifications,
    settings: v.settings as JsonObject,
    updatedAt: date(v.updated_at),
    version: num(v.version),
  };
}

// A value that does not decode is treated as a miss by the caller, never served.
function str(v: unknown): string {
  if (typeof v !== "string") throw new TypeError("cached value: expected a string field");
  return v;
}

function num(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v))
    throw new TypeError("cached value: expected an integer version");
  return v;
}

function date(v: unknown): Date {
  const d = new Date(str(v));
  if (Number.isNaN(d.getTime())) throw new TypeError("cached value: expected an ISO-8601 time");
  return d;
}
