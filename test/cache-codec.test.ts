// The cached JSON (src/profiles/cache-codec.ts): the seed's shape, so services
// that read `profile:{user_id}` and `preferences:{user_id}` directly keep
// working, plus the row version; and a value that does not decode is refused
// (the cache-aside then treats it as a miss), never served half-read.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodePreferences, decodeProfile, encodePreferences, encodeProfile } from "../src/profiles/cache-codec.js";
import type { PreferencesRecord, ProfileRecord } from "../src/profiles/records.js";

const profile: ProfileRecord = {
  userId: "123e4567-e89b-12d3-a456-426614174000",
  firstName: "John",
  lastName: "Doe",
  bio: "Software Engineer",
  avatarUrl: "https://example.com/avatar.jpg",
  phone: "+81-90-1234-5678",
  createdAt: new Date("2024-01-02T03:04:05.678Z"),
  updatedAt: new Date("2024-02-03T04:05:06.789Z"),
  version: 42,
};

const preferences: PreferencesRecord = {
  userId: "123e4567-e89b-12d3-a456-426614174000",
  theme: "dark",
  language: "ja-JP",
  emailNotifications: true,
  pushNotifications: false,
  settings: { timezone: "Asia/Tokyo", nested: { a: [1, "two", null] } },
  updatedAt: new Date("2024-02-03T04:05:06.789Z"),
  version: 7,
};

/** Any record shaped like `fixture`: each field drawn from values of its kind. */
function like<T extends object>(fixture: T): fc.Arbitrary<T> {
  const kindOf = (value: unknown): fc.Arbitrary<unknown> => {
    if (typeof value === "string") return fc.string();
    if (typeof value === "boolean") return fc.boolean();
    if (typeof value === "number") return fc.maxSafeNat();
    if (value instanceof Date) return fc.date({ noInvalidDate: true });
    // Settings: a few JSON objects, nested and empty.
    return fc.constantFrom(value, {}, { nested: { a: [1, "two", null, true] } });
  };
  const fields = Object.entries(fixture).map(([name, value]) => [name, kindOf(value)] as const);
  return fc.record(Object.fromEntries(fields)) as unknown as fc.Arbitrary<T>;
}

const json = (value: unknown) => JSON.stringify(value);
const profileJson = () => JSON.parse(encodeProfile(profile)) as Record<string, unknown>;
const preferencesJson = () => JSON.parse(encodePreferences(preferences)) as Record<string, unknown>;

describe("a cached profile", () => {
  it("is the seed's JSON: snake_case fields and ISO-8601 times, plus the row version", () => {
    expect(encodeProfile(profile)).toBe(
      '{"user_id":"123e4567-e89b-12d3-a456-426614174000","first_name":"John","last_name":"Doe","bio":"Software Engineer","avatar_url":"https://example.com/avatar.jpg","phone":"+81-90-1234-5678","created_at":"2024-01-02T03:04:05.678Z","updated_at":"2024-02-03T04:05:06.789Z","version":42}',
    );
  });

  it("decodes to the record it was encoded from", () => {
    expect(decodeProfile(encodeProfile(profile))).toEqual(profile);
  });

  it("decodes any record it encodes", () => {
    fc.assert(
      fc.property(like(profile), (p) => {
        expect(decodeProfile(encodeProfile(p))).toEqual(p);
      }),
    );
  });

  it("is refused without a version (a value written before versions were cached)", () => {
    const { version: _, ...seedOnly } = profileJson();
    expect(() => decodeProfile(json(seedOnly))).toThrow(TypeError);
  });

  it.each([
    ["a field that is not a string", { first_name: 1 }],
    ["a missing field", { phone: undefined }],
    ["a version that is not an integer", { version: 1.5 }],
    ["a version past the safe integers", { version: Number.MAX_SAFE_INTEGER + 1 }],
    ["a time that is not ISO-8601", { updated_at: "yesterday" }],
  ])("is refused with %s", (_case, change) => {
    expect(() => decodeProfile(json({ ...profileJson(), ...change }))).toThrow(TypeError);
  });

  it("is refused when it is not JSON", () => {
    expect(() => decodeProfile("{not json")).toThrow(SyntaxError);
  });
});

describe("cached preferences", () => {
  it("are the seed's JSON: snake_case fields, booleans, settings as an object, plus the row version", () => {
    expect(encodePreferences(preferences)).toBe(
      '{"user_id":"123e4567-e89b-12d3-a456-426614174000","theme":"dark","language":"ja-JP","email_notifications":true,"push_notifications":false,"settings":{"timezone":"Asia/Tokyo","nested":{"a":[1,"two",null]}},"updated_at":"2024-02-03T04:05:06.789Z","version":7}',
    );
  });

  it("decode to any record they were encoded from", () => {
    fc.assert(
      fc.property(like(preferences), (p) => {
        expect(decodePreferences(encodePreferences(p))).toEqual(p);
      }),
    );
  });

  it.each([
    ["a notification flag that is not a boolean", { email_notifications: "true" }],
    ["a missing notification flag", { push_notifications: undefined }],
    ["settings that are an array", { settings: [] }],
    ["settings that are null", { settings: null }],
    ["settings that are a string", { settings: "{}" }],
    ["a field that is not a string", { theme: 3 }],
    ["a version that is not an integer", { version: "7" }],
  ])("are refused with %s", (_case, change) => {
    expect(() => decodePreferences(json({ ...preferencesJson(), ...change }))).toThrow(TypeError);
  });
});
