// The request rules as a specification, one rule per test: src/api/validation.ts
// reports every problem of a request together, as field violations.

import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { PreferencesSchema, ProfileSchema } from "../gen/profile/v1/profile_pb.js";
import {
  MAX_BATCH_IDS,
  ValidationError,
  Violations,
  checkUserIds,
  expectedVersion,
  preferencesPatch,
  profilePatch,
  targetUserId,
} from "../src/api/validation.js";
import type { FieldViolation } from "../src/api/status.js";

const USER = "123e4567-e89b-12d3-a456-426614174000";

/** The violations `rule` adds, by field. */
function violations(rule: (v: Violations) => unknown): FieldViolation[] {
  const v = new Violations();
  rule(v);
  try {
    v.check();
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return [...(err as ValidationError).violations];
  }
}
const fields = (rule: (v: Violations) => unknown) => violations(rule).map((x) => x.field);
const mask = (...paths: string[]) => create(FieldMaskSchema, { paths });

describe("the target user", () => {
  it("is the token's subject when the request names none", () => {
    expect(violations((v) => expect(targetUserId("", USER, "user_id", v)).toBe(USER))).toEqual([]);
  });

  it("must be named when the token's subject is not a user id", () => {
    expect(violations((v) => targetUserId("", "service-a", "user_id", v))).toEqual([
      { field: "user_id", description: expect.stringMatching(/^required/) as string },
    ]);
  });

  it("must be a canonical lowercase UUID", () => {
    expect(fields((v) => targetUserId(USER.toUpperCase(), USER, "user_id", v))).toEqual(["user_id"]);
  });
});

describe("a list of user ids", () => {
  it("needs at least one id, unless empty is allowed (a watch of everyone)", () => {
    expect(fields((v) => checkUserIds([], "user_ids", v))).toEqual(["user_ids"]);
    expect(fields((v) => checkUserIds([], "user_ids", v, { allowEmpty: true }))).toEqual([]);
  });

  it(`holds at most ${MAX_BATCH_IDS} ids`, () => {
    const ids = Array.from({ length: MAX_BATCH_IDS + 1 }, () => USER);
    expect(fields((v) => checkUserIds(ids, "user_ids", v))).toEqual(["user_ids"]);
  });

  it("names each bad id by its index", () => {
    expect(fields((v) => checkUserIds([USER, "x", USER, ""], "user_ids", v))).toEqual(["user_ids[1]", "user_ids[3]"]);
  });
});

describe("an etag", () => {
  it("is no precondition when empty", () => {
    expect(expectedVersion("", "etag", new Violations())).toBeUndefined();
  });

  it("that we never issued matches no version", () => {
    expect(expectedVersion("not-ours", "etag", new Violations())).toBe(-1);
  });

  it("longer than 64 characters is refused", () => {
    expect(fields((v) => expectedVersion("e".repeat(65), "etag", v))).toEqual(["etag"]);
  });
});

describe("a profile patch", () => {
  it("takes every writable field when the mask is empty", () => {
    const patch = profilePatch(create(ProfileSchema, { firstName: "Ada", bio: "" }), undefined, new Violations());
    expect(Object.keys(patch).sort()).toEqual(["avatarUrl", "bio", "firstName", "lastName", "phone"]);
  });

  it("takes only the masked fields", () => {
    expect(profilePatch(create(ProfileSchema, { firstName: "Ada", bio: "x" }), mask("bio"), new Violations())).toEqual({
      bio: "x",
    });
  });

  it("names an unknown mask path by its index", () => {
    expect(fields((v) => profilePatch(undefined, mask("bio", "email"), v))).toEqual(["update_mask.paths[1]"]);
  });

  it("reports every bad field at once", () => {
    const profile = create(ProfileSchema, {
      firstName: "a\u0000b",
      lastName: "x".repeat(101),
      bio: "\ud800",
      avatarUrl: "http://example.com/a.png",
      phone: "12345",
    });
    expect(fields((v) => profilePatch(profile, undefined, v)).sort()).toEqual([
      "profile.avatar_url",
      "profile.bio",
      "profile.first_name",
      "profile.last_name",
      "profile.phone",
    ]);
  });

  it("counts length in code points, not UTF-16 units", () => {
    const emoji = "😀".repeat(100);
    expect(fields((v) => profilePatch(create(ProfileSchema, { firstName: emoji }), mask("first_name"), v))).toEqual([]);
  });

  it("accepts a phone number with + and 8 to 15 digits, spaces or dashes between them", () => {
    const ok = create(ProfileSchema, { phone: "+81 90-1234-5678" });
    expect(fields((v) => profilePatch(ok, mask("phone"), v))).toEqual([]);
  });
});

describe("a preferences patch", () => {
  it("accepts only the known themes", () => {
    const prefs = (theme: string) => create(PreferencesSchema, { theme, language: "en" });
    expect(fields((v) => preferencesPatch(prefs("dark"), mask("theme"), v))).toEqual([]);
    expect(fields((v) => preferencesPatch(prefs("blue"), mask("theme"), v))).toEqual(["preferences.theme"]);
  });

  it("needs a BCP-47 language tag", () => {
    const prefs = (language: string) => create(PreferencesSchema, { language });
    expect(fields((v) => preferencesPatch(prefs("en-US"), mask("language"), v))).toEqual([]);
    expect(fields((v) => preferencesPatch(prefs("english!"), mask("language"), v))).toEqual(["preferences.language"]);
  });
});
