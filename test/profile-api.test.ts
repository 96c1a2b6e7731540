// The contract, end to end: grpc-js and Connect clients against the real
// service on real PostgreSQL and Redis.

import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fieldViolations, grpc } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({ label: "profile_api", env: { READ_MAX_BYTES: "65536" } });
});
afterAll(async () => {
  await svc?.close();
});

async function grpcError(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("expected the call to fail");
}

describe("profiles over grpc-js", () => {
  it("creates, reads, updates with a mask, and deletes a profile", async () => {
    const me = randomUserId();
    const token = await mintToken(me);

    const created = await svc.grpc.unary(
      "updateProfile",
      {
        profile: {
          firstName: "John",
          lastName: "Doe",
          bio: "Software Engineer",
          avatarUrl: "https://example.com/avatar.jpg",
          phone: "+81-90-1234-5678",
        },
      },
      token,
    );
    expect(created.profile).toMatchObject({
      userId: me,
      firstName: "John",
      lastName: "Doe",
      phone: "+81-90-1234-5678",
    });
    expect(created.profile!.etag).not.toBe("");
    expect(created.profile!.createTime).toBeDefined();

    const read = await svc.grpc.unary("getProfile", { userId: me }, token);
    expect(read.profile).toMatchObject({ firstName: "John", bio: "Software Engineer", etag: created.profile!.etag });
    expect(read.preferences).toBeUndefined();

    const updated = await svc.grpc.unary(
      "updateProfile",
      { profile: { firstName: "Jane", lastName: "ignored" }, updateMask: { paths: ["first_name"] } },
      token,
    );
    expect(updated.profile).toMatchObject({ firstName: "Jane", lastName: "Doe", bio: "Software Engineer" });
    expect(updated.profile!.etag).not.toBe(created.profile!.etag);
    expect(updated.profile!.createTime).toEqual(created.profile!.createTime);

    await svc.grpc.unary("deleteProfile", {}, token);
    const gone = await grpcError(svc.grpc.unary("getProfile", {}, token));
    expect(gone.code).toBe(grpc.status.NOT_FOUND);
    const again = await grpcError(svc.grpc.unary("deleteProfile", {}, token));
    expect(again.code).toBe(grpc.status.NOT_FOUND);
  });

  it("returns preferences with the profile only when asked and present", async () => {
    const me = randomUserId();
    const token = await mintToken(me);
    await svc.grpc.unary("updateProfile", { profile: { firstName: "A" } }, token);

    const without = await svc.grpc.unary("getProfile", { includePreferences: true }, token);
    expect(without.profile?.firstName).toBe("A");
    expect(without.preferences).toBeUndefined();

    await svc.grpc.unary(
      "updatePreferences",
      {
        preferences: {
          theme: "dark",
          language: "ja",
          emailNotifications: true,
          pushNotifications: false,
          settings: { font_size: "medium", sidebar_position: "left" },
        },
      },
      token,
    );
    const both = await svc.grpc.unary("getProfile", { includePreferences: true }, token);
    expect(both.preferences).toMatchObject({
      userId: me,
      theme: "dark",
      language: "ja",
      emailNotifications: true,
      pushNotifications: false,
      settings: { font_size: "medium", sidebar_position: "left" },
    });
    const onlyProfile = await svc.grpc.unary("getProfile", {}, token);
    expect(onlyProfile.preferences).toBeUndefined();

    const prefs = await svc.grpc.unary("getPreferences", {}, token);
    expect(prefs.preferences?.theme).toBe("dark");
  });

  it("creates preferences with defaults for fields outside the mask", async () => {
    const token = await mintToken(randomUserId());
    const res = await svc.grpc.unary(
      "updatePreferences",
      { preferences: { theme: "light" }, updateMask: { paths: ["theme"] } },
      token,
    );
    expect(res.preferences).toMatchObject({
      theme: "light",
      language: "en",
      emailNotifications: true,
      pushNotifications: false,
      settings: {},
    });
  });

  it("canonicalizes language tags", async () => {
    const token = await mintToken(randomUserId());
    const res = await svc.grpc.unary(
      "updatePreferences",
      { preferences: { language: "en-us" }, updateMask: { paths: ["language"] } },
      token,
    );
    expect(res.preferences?.language).toBe("en-US");
  });

  it("deleting a profile deletes its preferences", async () => {
    const token = await mintToken(randomUserId());
    await svc.grpc.unary("updateProfile", { profile: { firstName: "A" } }, token);
    await svc.grpc.unary(
      "updatePreferences",
      { preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
      token,
    );
    await svc.grpc.unary("getPreferences", {}, token);
    await svc.grpc.unary("deleteProfile", {}, token);
    const err = await grpcError(svc.grpc.unary("getPreferences", {}, token));
    expect(err.code).toBe(grpc.status.NOT_FOUND);
  });
});

describe("BatchGetProfiles", () => {
  it("returns found profiles in request order, with duplicates, and lists missing ids", async () => {
    const ids = [randomUserId(), randomUserId(), randomUserId()];
    const writer = await mintToken(randomUserId(), { scope: "profiles:write profiles:read" });
    for (const [i, id] of ids.entries()) {
      await svc.grpc.unary("updateProfile", { userId: id, profile: { firstName: `user${i}` } }, writer);
    }
    const missing = [randomUserId(), randomUserId()];
    // Warm one id so the batch mixes hits and misses.
    await svc.grpc.unary("getProfile", { userId: ids[1] }, writer);

    const request = [ids[2]!, missing[0]!, ids[0]!, ids[1]!, ids[2]!, missing[1]!];
    const res = await svc.grpc.unary("batchGetProfiles", { userIds: request }, writer);
    expect(res.profiles.map((p) => p.firstName)).toEqual(["user2", "user0", "user1", "user2"]);
    expect(res.missingUserIds).toEqual(missing);

    // A second call is served from the cache and agrees.
    const again = await svc.connect.batchGetProfiles(
      { userIds: request },
      { headers: { authorization: `Bearer ${writer}` } },
    );
    expect(again.profiles.map((p) => p.userId)).toEqual(res.profiles.map((p) => p.userId));
  });

  it("needs profiles:read unless every id is the caller's", async () => {
    const me = randomUserId();
    const token = await mintToken(me);
    await svc.grpc.unary("updateProfile", { profile: { firstName: "me" } }, token);
    const mine = await svc.grpc.unary("batchGetProfiles", { userIds: [me, me] }, token);
    expect(mine.profiles).toHaveLength(2);
    const err = await grpcError(svc.grpc.unary("batchGetProfiles", { userIds: [me, randomUserId()] }, token));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it("rejects an empty batch, more than 100 ids, and malformed ids with field violations", async () => {
    const token = await mintToken(randomUserId(), { scope: "profiles:read" });
    const empty = await grpcError(svc.grpc.unary("batchGetProfiles", { userIds: [] }, token));
    expect(empty.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fieldViolations(empty).map((v) => v.field)).toEqual(["user_ids"]);

    const tooMany = await grpcError(
      svc.grpc.unary("batchGetProfiles", { userIds: Array.from({ length: 101 }, randomUserId) }, token),
    );
    expect(tooMany.code).toBe(grpc.status.INVALID_ARGUMENT);

    const bad = await grpcError(svc.grpc.unary("batchGetProfiles", { userIds: [randomUserId(), "nope"] }, token));
    expect(fieldViolations(bad)).toEqual([expect.objectContaining({ field: "user_ids[1]" })]);

    const hundred = await svc.grpc.unary(
      "batchGetProfiles",
      { userIds: Array.from({ length: 100 }, randomUserId) },
      token,
    );
    expect(hundred.missingUserIds).toHaveLength(100);
  });
});

describe("optimistic concurrency", () => {
  it("rejects a stale etag with ABORTED and accepts the current one", async () => {
    const token = await mintToken(randomUserId());
    const v1 = (await svc.grpc.unary("updateProfile", { profile: { firstName: "v1" } }, token)).profile!;
    const v2 = (
      await svc.grpc.unary(
        "updateProfile",
        { profile: { firstName: "v2" }, etag: v1.etag, updateMask: { paths: ["first_name"] } },
        token,
      )
    ).profile!;
    expect(v2.firstName).toBe("v2");

    const stale = await grpcError(
      svc.grpc.unary(
        "updateProfile",
        { profile: { firstName: "v3" }, etag: v1.etag, updateMask: { paths: ["first_name"] } },
        token,
      ),
    );
    expect(stale.code).toBe(grpc.status.ABORTED);
    const garbage = await grpcError(
      svc.grpc.unary("updateProfile", { profile: { firstName: "x" }, etag: "not-an-etag" }, token),
    );
    expect(garbage.code).toBe(grpc.status.ABORTED);
    expect((await svc.grpc.unary("getProfile", {}, token)).profile!.firstName).toBe("v2");

    const staleDelete = await grpcError(svc.grpc.unary("deleteProfile", { etag: v1.etag }, token));
    expect(staleDelete.code).toBe(grpc.status.ABORTED);
    await svc.grpc.unary("deleteProfile", { etag: v2.etag }, token);
  });

  it("an etag on a profile that does not exist is ABORTED for updates and NOT_FOUND for deletes", async () => {
    const token = await mintToken(randomUserId());
    const update = await grpcError(svc.grpc.unary("updateProfile", { profile: { firstName: "x" }, etag: "12" }, token));
    expect(update.code).toBe(grpc.status.ABORTED);
    const del = await grpcError(svc.grpc.unary("deleteProfile", { etag: "12" }, token));
    expect(del.code).toBe(grpc.status.NOT_FOUND);
  });

  it("preferences have their own etag", async () => {
    const token = await mintToken(randomUserId());
    const p1 = (
      await svc.grpc.unary(
        "updatePreferences",
        { preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
        token,
      )
    ).preferences!;
    await svc.grpc.unary(
      "updatePreferences",
      { preferences: { theme: "light" }, updateMask: { paths: ["theme"] }, etag: p1.etag },
      token,
    );
    const stale = await grpcError(
      svc.grpc.unary(
        "updatePreferences",
        { preferences: { theme: "system" }, updateMask: { paths: ["theme"] }, etag: p1.etag },
        token,
      ),
    );
    expect(stale.code).toBe(grpc.status.ABORTED);
  });

  it("of two concurrent writers with the same etag, exactly one wins", async () => {
    const token = await mintToken(randomUserId());
    const base = (await svc.grpc.unary("updateProfile", { profile: { firstName: "base" } }, token)).profile!;
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        svc.grpc.unary(
          "updateProfile",
          { profile: { firstName: `w${i}` }, etag: base.etag, updateMask: { paths: ["first_name"] } },
          token,
        ),
      ),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) {
      if (r.status === "rejected") expect((r.reason as grpc.ServiceError).code).toBe(grpc.status.ABORTED);
    }
  });
});

describe("validation", () => {
  it("reports every bad field at once as google.rpc.BadRequest field violations", async () => {
    const token = await mintToken(randomUserId());
    const err = await grpcError(
      svc.grpc.unary(
        "updateProfile",
        {
          profile: {
            firstName: "x".repeat(101),
            lastName: "ok",
            bio: "b".repeat(1001),
            avatarUrl: "http://example.com/a.png",
            phone: "12345",
          },
        },
        token,
      ),
    );
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(
      fieldViolations(err)
        .map((v) => v.field)
        .sort(),
    ).toEqual(["profile.avatar_url", "profile.bio", "profile.first_name", "profile.phone"].sort());
  });

  it("counts length in code points, not UTF-16 units", async () => {
    const token = await mintToken(randomUserId());
    const hundredEmoji = "😀".repeat(100);
    const ok = await svc.grpc.unary(
      "updateProfile",
      { profile: { firstName: hundredEmoji }, updateMask: { paths: ["first_name"] } },
      token,
    );
    expect(ok.profile?.firstName).toBe(hundredEmoji);
    const err = await grpcError(
      svc.grpc.unary(
        "updateProfile",
        { profile: { firstName: hundredEmoji + "😀" }, updateMask: { paths: ["first_name"] } },
        token,
      ),
    );
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("rejects a NUL byte with INVALID_ARGUMENT, not a database error", async () => {
    const token = await mintToken(randomUserId());
    const err = await grpcError(
      svc.grpc.unary("updateProfile", { profile: { bio: "a\u0000b" }, updateMask: { paths: ["bio"] } }, token),
    );
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fieldViolations(err)).toEqual([
      {
        field: "profile.bio",
        description: "must not contain NUL bytes",
        $typeName: "google.rpc.BadRequest.FieldViolation",
        reason: "",
        localizedMessage: undefined,
      },
    ]);

    const inSettings = await grpcError(
      svc.grpc.unary(
        "updatePreferences",
        { preferences: { settings: { k: "v\u0000" } }, updateMask: { paths: ["settings"] } },
        token,
      ),
    );
    expect(inSettings.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fieldViolations(inSettings).map((v) => v.field)).toEqual(["preferences.settings"]);
  });

  it("rejects control characters anywhere", async () => {
    const token = await mintToken(randomUserId());
    for (const ch of ["\n", "\t", "\u001b", "\u007f", "\u0085"]) {
      const err = await grpcError(
        svc.grpc.unary(
          "updateProfile",
          { profile: { lastName: `a${ch}b` }, updateMask: { paths: ["last_name"] } },
          token,
        ),
      );
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    }
  });

  it("accepts the seed's phone number and rejects malformed ones", async () => {
    const token = await mintToken(randomUserId());
    for (const phone of ["+81-90-1234-5678", "+1 415 555 0100", "+4915112345678", ""]) {
      const res = await svc.grpc.unary(
        "updateProfile",
        { profile: { phone }, updateMask: { paths: ["phone"] } },
        token,
      );
      expect(res.profile?.phone).toBe(phone);
    }
    for (const phone of [
      "81-90-1234-5678",
      "+1234567",
      "+1234567890123456",
      "+81--90",
      "+81-90-1234-5678 ext 2",
      "++8190",
    ]) {
      const err = await grpcError(
        svc.grpc.unary("updateProfile", { profile: { phone }, updateMask: { paths: ["phone"] } }, token),
      );
      expect(err.code, phone).toBe(grpc.status.INVALID_ARGUMENT);
    }
  });

  it("checks avatar URLs, themes, languages and settings size", async () => {
    const token = await mintToken(randomUserId());
    const cases: [
      string,
      Parameters<typeof svc.grpc.unary<"updatePreferences">>[1] | Parameters<typeof svc.grpc.unary<"updateProfile">>[1],
      string,
    ][] = [
      [
        "updateProfile",
        { profile: { avatarUrl: "https://" }, updateMask: { paths: ["avatar_url"] } },
        "profile.avatar_url",
      ],
      [
        "updateProfile",
        { profile: { avatarUrl: "javascript:alert(1)" }, updateMask: { paths: ["avatar_url"] } },
        "profile.avatar_url",
      ],
      [
        "updateProfile",
        { profile: { avatarUrl: `https://example.com/${"a".repeat(2048)}` }, updateMask: { paths: ["avatar_url"] } },
        "profile.avatar_url",
      ],
      ["updatePreferences", { preferences: { theme: "blue" }, updateMask: { paths: ["theme"] } }, "preferences.theme"],
      [
        "updatePreferences",
        { preferences: { language: "not a tag" }, updateMask: { paths: ["language"] } },
        "preferences.language",
      ],
      [
        "updatePreferences",
        { preferences: { language: "" }, updateMask: { paths: ["language"] } },
        "preferences.language",
      ],
      [
        "updatePreferences",
        { preferences: { settings: { big: "x".repeat(17 * 1024) } }, updateMask: { paths: ["settings"] } },
        "preferences.settings",
      ],
    ];
    for (const [method, request, field] of cases) {
      const err = await grpcError(svc.grpc.unary(method as "updateProfile", request as never, token));
      expect(err.code, field).toBe(grpc.status.INVALID_ARGUMENT);
      expect(fieldViolations(err).map((v) => v.field)).toEqual([field]);
    }
  });

  it("rejects unknown mask paths and malformed user ids", async () => {
    const token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
    const mask = await grpcError(
      svc.grpc.unary("updateProfile", { profile: {}, updateMask: { paths: ["first_name", "email"] } }, token),
    );
    expect(mask.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fieldViolations(mask).map((v) => v.field)).toEqual(["update_mask.paths[1]"]);

    for (const userId of [
      "123",
      "123E4567-E89B-12D3-A456-426614174000",
      "{123e4567-e89b-12d3-a456-426614174000}",
      "' OR 1=1 --",
    ]) {
      const err = await grpcError(svc.grpc.unary("getProfile", { userId }, token));
      expect(err.code, userId).toBe(grpc.status.INVALID_ARGUMENT);
      expect(fieldViolations(err).map((v) => v.field)).toEqual(["user_id"]);
    }
  });

  it("needs an explicit user_id when the token's subject is not a user id", async () => {
    const token = await mintToken("search-indexer", { scope: "profiles:read" });
    const err = await grpcError(svc.grpc.unary("getProfile", {}, token));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    const other = await grpcError(svc.grpc.unary("getProfile", { userId: randomUserId() }, token));
    expect(other.code).toBe(grpc.status.NOT_FOUND);
  });

  it("answers an oversized request with RESOURCE_EXHAUSTED", async () => {
    const token = await mintToken(randomUserId());
    const err = await grpcError(svc.grpc.unary("updateProfile", { profile: { bio: "x".repeat(70_000) } }, token));
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});

describe("over the Connect protocol", () => {
  it("serves the same data and maps errors to the same codes", async () => {
    const me = randomUserId();
    const headers = { authorization: `Bearer ${await mintToken(me)}` };
    const created = await svc.connect.updateProfile({ profile: { firstName: "Connect" } }, { headers });
    const read = await svc.connect.getProfile({}, { headers });
    expect(read.profile?.etag).toBe(created.profile?.etag);

    // Another user's id, malformed too: permission is checked first (AIP-211).
    const err = await svc.connect.getProfile({ userId: "bad" }, { headers }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.PermissionDenied);
    const invalid = await svc.connect
      .updateProfile({ profile: { phone: "bad" }, updateMask: { paths: ["phone"] } }, { headers })
      .catch((e: unknown) => e);
    expect((invalid as ConnectError).code).toBe(Code.InvalidArgument);
    const unauth = await svc.connect.getProfile({}).catch((e: unknown) => e);
    expect((unauth as ConnectError).code).toBe(Code.Unauthenticated);
  });
});
