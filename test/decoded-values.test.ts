// Equal cached strings decode to one shared, frozen record (so its reply is
// built and encoded once); any other string, such as a write's new value,
// decodes on its own.

import { describe, expect, it } from "vitest";
import { decodeProfile, encodeProfile } from "../src/profiles/cache-codec.js";
import { sharedDecoder } from "../src/profiles/decoded-values.js";
import { replyOf } from "../src/api/reply-memo.js";

const record = {
  userId: "11111111-2222-4333-8444-555555555555",
  firstName: "Ada",
  lastName: "L",
  bio: "",
  avatarUrl: "",
  phone: "",
  createdAt: new Date("2026-01-01T00:00:00Z"),
  updatedAt: new Date("2026-01-01T00:00:00Z"),
  version: 1,
};

describe("sharedDecoder", () => {
  it("decodes equal strings to one frozen record and a changed string anew", () => {
    const decode = sharedDecoder(decodeProfile);
    const raw = encodeProfile(record);
    const first = decode(raw);
    const again = decode(` ${raw}`.slice(1)); // an equal string, not the same one: as Redis replies are
    expect(again).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    const written = decode(encodeProfile({ ...record, firstName: "Grace", version: 2 }));
    expect(written).not.toBe(first);
    expect(written).toMatchObject({ firstName: "Grace", version: 2 });
  });

  it("still refuses a value that does not decode", () => {
    expect(() => sharedDecoder(decodeProfile)("{}")).toThrow(TypeError);
  });
});

describe("replyOf", () => {
  it("builds one reply per pair of records", () => {
    const a = {};
    const b = {};
    let built = 0;
    const build = () => ({ n: ++built });
    expect(replyOf(a, undefined, build)).toBe(replyOf(a, undefined, build));
    expect(replyOf(a, b, build)).not.toBe(replyOf(a, undefined, build));
    expect(replyOf(a, b, build)).toBe(replyOf(a, b, build));
    expect(built).toBe(2);
  });
});
