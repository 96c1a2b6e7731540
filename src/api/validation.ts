// Request validation. Every field is checked before any I/O, and all problems
// are reported together as google.rpc.BadRequest field violations.

import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { FieldMask } from "@bufbuild/protobuf/wkt";
import {
  preferencesFields,
  profileFields,
  versionOfEtag,
  type PreferencesPatch,
  type ProfilePatch,
} from "../profiles/records.js";
import type { Preferences, Profile } from "../../gen/profile/v1/profile_pb.js";
import type { FieldViolation } from "./status.js";

/** Thrown with every violation found; maps to INVALID_ARGUMENT. */
export class ValidationError extends Error {
  constructor(readonly violations: readonly FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join("; "));
    this.name = "ValidationError";
  }
}

export const MAX_BATCH_IDS = 100;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PHONE = /^\+(?:[ -]?\d){8,15}$/;
// C0, DEL and C1 control characters.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const THEMES = ["light", "dark", "system"];
const MAX_SETTINGS_BYTES = 16 * 1024;
const MAX_URL_LENGTH = 2048;

export class Violations {
  private readonly list: FieldViolation[] = [];

  add(field: string, description: string): void {
    this.list.push({ field, description });
  }

  /** Throws when anything was added. */
  check(): void {
    if (this.list.length > 0) throw new ValidationError(this.list);
  }
}

export function isUserId(value: string): boolean {
  return UUID.test(value);
}

/**
 * The user a request targets: its `user_id`, or the caller when empty. The
 * caller's own id comes from the token, never from the body.
 */
export function targetUserId(requested: string, callerSubject: string, field: string, v: Violations): string {
  if (requested === "") {
    if (!isUserId(callerSubject)) {
      v.add(field, "required: the token's subject is not a user id, so name the user explicitly");
    }
    return callerSubject;
  }
  if (!isUserId(requested)) v.add(field, "must be a canonical lowercase UUID");
  return requested;
}

/** A list of user ids: at most MAX_BATCH_IDS, each a user id; empty only with `allowEmpty` (a watch of everyone). */
export function checkUserIds(
  ids: readonly string[],
  field: string,
  v: Violations,
  { allowEmpty = false }: { allowEmpty?: boolean } = {},
): void {
  if (ids.length === 0 && !allowEmpty) v.add(field, "at least one user id is required");
  if (ids.length > MAX_BATCH_IDS) v.add(field, `at most ${MAX_BATCH_IDS} user ids are allowed, got ${ids.length}`);
  ids.slice(0, MAX_BATCH_IDS + 1).forEach((id, i) => {
    if (!isUserId(id)) v.add(`${field}[${i}]`, "must be a canonical lowercase UUID");
  });
}

/** The version an etag requires; undefined when the etag is empty (no precondition). */
export function expectedVersion(etag: string, field: string, v: Violations): number | undefined {
  if (etag === "") return undefined;
  checkText(etag, field, 64, v);
  // An etag we never issued can never be current: -1 matches no row, so the
  // store answers ABORTED (or NOT_FOUND) exactly as for a stale etag.
  return versionOfEtag(etag) ?? -1;
}

/** Mask paths, or every writable field when the mask is empty. */
function maskPaths<F extends string>(mask: FieldMask | undefined, allowed: readonly F[], v: Violations): F[] {
  const paths = mask?.paths ?? [];
  if (paths.length === 0) return [...allowed];
  const out = new Set<F>();
  paths.forEach((path, i) => {
    if ((allowed as readonly string[]).includes(path)) out.add(path as F);
    else v.add(`update_mask.paths[${i}]`, `unknown field "${printable(path)}"; allowed: ${allowed.join(", ")}`);
  });
  return [...out];
}

export function profilePatch(profile: Profile | undefined, mask: FieldMask | undefined, v: Violations): ProfilePatch {
  const fields = maskPaths(mask, profileFields, v);
  const p = profile ?? { firstName: "", lastName: "", bio: "", avatarUrl: "", phone: "" };
  const patch: ProfilePatch = {};
  for (const field of fields) {
    switch (field) {
      case "first_name":
        if (checkText(p.firstName, "profile.first_name", 100, v)) patch.firstName = p.firstName;
        break;
      case "last_name":
        if (checkText(p.lastName, "profile.last_name", 100, v)) patch.lastName = p.lastName;
        break;
      case "bio":
        if (checkText(p.bio, "profile.bio", 1000, v)) patch.bio = p.bio;
        break;
      case "avatar_url":
        if (checkAvatarUrl(p.avatarUrl, v)) patch.avatarUrl = p.avatarUrl;
        break;
      case "phone":
        if (checkText(p.phone, "profile.phone", 32, v)) {
          if (p.phone !== "" && !PHONE.test(p.phone)) {
            v.add(
              "profile.phone",
              'must be empty, or "+" and 8 to 15 digits, optionally separated by spaces or dashes',
            );
          } else patch.phone = p.phone;
        }
        break;
    }
  }
  return patch;
}

export function preferencesPatch(
  prefs: Preferences | undefined,
  mask: FieldMask | undefined,
  v: Violations,
): PreferencesPatch {
  const fields = maskPaths(mask, preferencesFields, v);
  const p = prefs ?? {
    theme: "",
    language: "",
    emailNotifications: false,
    pushNotifications: false,
    settings: undefined,
  };
  const patch: PreferencesPatch = {};
  for (const field of fields) {
    switch (field) {
      case "theme":
        if (!THEMES.includes(p.theme)) v.add("preferences.theme", `must be one of ${THEMES.join(", ")}`);
        else patch.theme = p.theme;
        break;
      case "language": {
        const tag = languageTag(p.language);
        if (tag === undefined) v.add("preferences.language", 'must be a BCP-47 language tag, such as "ja" or "en-US"');
        else patch.language = tag;
        break;
      }
      case "email_notifications":
        patch.emailNotifications = p.emailNotifications;
        break;
      case "push_notifications":
        patch.pushNotifications = p.pushNotifications;
        break;
      case "settings": {
        const settings = p.settings ?? {};
        if (checkSettings(settings, v)) patch.settings = settings;
        break;
      }
    }
  }
  return patch;
}

/** Checks length in code points, well-formedness and control characters. */
function checkText(value: string, field: string, maxCodePoints: number, v: Violations): boolean {
  if (!value.isWellFormed()) {
    v.add(field, "must be valid Unicode (it has an unpaired surrogate)");
    return false;
  }
  if (CONTROL.test(value)) {
    v.add(field, value.includes("\u0000") ? "must not contain NUL bytes" : "must not contain control characters");
    return false;
  }
  let count = 0;
  for (const _ of value) if (++count > maxCodePoints) break;
  if (count > maxCodePoints) {
    v.add(field, `must be at most ${maxCodePoints} characters`);
    return false;
  }
  return true;
}

function checkAvatarUrl(value: string, v: Violations): boolean {
  const field = "profile.avatar_url";
  if (value === "") return true;
  if (!checkText(value, field, MAX_URL_LENGTH, v)) return false;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || url.protocol !== "https:" || url.hostname === "") {
    v.add(field, "must be an absolute https URL");
    return false;
  }
  return true;
}

/** The canonical form of a BCP-47 tag, or undefined when it is not one. */
function languageTag(value: string): string | undefined {
  if (value === "" || value.length > 64 || CONTROL.test(value)) return undefined;
  try {
    const [canonical] = Intl.getCanonicalLocales(value);
    return canonical;
  } catch {
    return undefined;
  }
}

function checkSettings(settings: JsonObject, v: Violations): boolean {
  const field = "preferences.settings";
  const problem = jsonProblem(settings, 0);
  if (problem !== undefined) {
    v.add(field, problem);
    return false;
  }
  const bytes = Buffer.byteLength(JSON.stringify(settings));
  if (bytes > MAX_SETTINGS_BYTES) {
    v.add(field, `must be at most ${MAX_SETTINGS_BYTES} bytes as JSON, got ${bytes}`);
    return false;
  }
  return true;
}

// PostgreSQL's jsonb rejects \u0000, and JSON has no NaN or Infinity.
function jsonProblem(value: JsonValue, depth: number): string | undefined {
  if (depth > 32) return "must not nest deeper than 32 levels";
  if (typeof value === "number") return Number.isFinite(value) ? undefined : "numbers must be finite";
  if (typeof value === "string") return stringProblem(value);
  if (Array.isArray(value)) {
    for (const item of value) {
      const p = jsonProblem(item, depth + 1);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  if (value !== null && typeof value === "object") {
    for (const [k, item] of Object.entries(value)) {
      const p = stringProblem(k) ?? jsonProblem(item, depth + 1);
      if (p !== undefined) return p;
    }
  }
  return undefined;
}

function stringProblem(s: string): string | undefined {
  if (!s.isWellFormed()) return "strings must be valid Unicode";
  if (s.includes("\u0000")) return "strings must not contain NUL bytes";
  return undefined;
}

/** A client-supplied string made safe to echo in an error message. */
function printable(s: string): string {
  const clipped = [...s].slice(0, 64).join("");
  return clipped.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}
