// Domain records: what the repository returns and the cache stores.

import type { JsonObject } from "@bufbuild/protobuf";

export interface ProfileRecord {
  userId: string;
  firstName: string;
  lastName: string;
  bio: string;
  avatarUrl: string;
  phone: string;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

export interface PreferencesRecord {
  userId: string;
  theme: string;
  language: string;
  emailNotifications: boolean;
  pushNotifications: boolean;
  settings: JsonObject;
  updatedAt: Date;
  version: number;
}

/** Proto field names of Profile that clients may write, and their columns. */
export const profileFields = ["first_name", "last_name", "bio", "avatar_url", "phone"] as const;
export type ProfileField = (typeof profileFields)[number];

/** Proto field names of Preferences that clients may write, and their columns. */
export const preferencesFields = [
  "theme",
  "language",
  "email_notifications",
  "push_notifications",
  "settings",
] as const;
export type PreferencesField = (typeof preferencesFields)[number];

export type ProfilePatch = Partial<Pick<ProfileRecord, "firstName" | "lastName" | "bio" | "avatarUrl" | "phone">>;
export type PreferencesPatch = Partial<
  Pick<PreferencesRecord, "theme" | "language" | "emailNotifications" | "pushNotifications" | "settings">
>;

export function etagOf(version: number): string {
  return String(version);
}

/** The version an etag names, or undefined when it cannot name any version. */
export function versionOfEtag(etag: string): number | undefined {
  return /^[1-9]\d{0,15}$/.test(etag) ? Number(etag) : undefined;
}
