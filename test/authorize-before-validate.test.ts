// Issue 9, item 6 (Google AIP-211): permission is checked before the request
// is validated. A caller without permission on another user's data gets
// PERMISSION_DENIED, with no field violations, even when the request is also
// malformed; a malformed user id that is not the caller's own is another
// user's data too. Requests on the caller's own data are still validated.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventType } from "../gen/profile/v1/profile_pb.js";
import { fieldViolations, grpc } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

let svc: TestService;
let alice: string;
let aliceToken: string;
const bob = randomUserId();

beforeAll(async () => {
  svc = await startTestService({ label: "authorize_first" });
  alice = randomUserId();
  aliceToken = await mintToken(alice);
});
afterAll(async () => {
  await svc?.close();
});

async function failure(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("the call succeeded");
}

async function expectDenied(call: Promise<unknown>): Promise<void> {
  const err = await failure(call);
  expect(err.code, err.details).toBe(grpc.status.PERMISSION_DENIED);
  expect(fieldViolations(err)).toEqual([]);
}

async function watchOutcome(request: Parameters<TestService["grpc"]["stream"]>[0], token: string) {
  const stream = new WatchStream(svc.grpc.stream(request, token));
  await stream.until((s) => s.error !== undefined || s.ended).catch(() => {});
  stream.cancel();
  return stream.error?.code;
}

describe("another user's data, with a malformed request", () => {
  it("GetProfile and GetPreferences: PERMISSION_DENIED for a malformed user_id that is not the caller's", async () => {
    await expectDenied(svc.grpc.unary("getProfile", { userId: "not-a-uuid" }, aliceToken));
    await expectDenied(svc.grpc.unary("getProfile", { userId: bob.toUpperCase() }, aliceToken));
    await expectDenied(svc.grpc.unary("getPreferences", { userId: "' OR 1=1 --" }, aliceToken));
  });

  it("BatchGetProfiles: PERMISSION_DENIED for a batch naming another user's id and a malformed id", async () => {
    await expectDenied(svc.grpc.unary("batchGetProfiles", { userIds: [alice, bob, "nope"] }, aliceToken));
    await expectDenied(svc.grpc.unary("batchGetProfiles", { userIds: [alice, "nope"] }, aliceToken));
    await expectDenied(
      svc.grpc.unary("batchGetProfiles", { userIds: [bob, ...Array.from({ length: 101 }, () => alice)] }, aliceToken),
    );
  });

  it("UpdateProfile, DeleteProfile, UpdatePreferences: PERMISSION_DENIED before any field is checked", async () => {
    await expectDenied(
      svc.grpc.unary(
        "updateProfile",
        { userId: bob, profile: { firstName: "x\u0000", phone: "call me" }, updateMask: { paths: ["nope"] } },
        aliceToken,
      ),
    );
    await expectDenied(svc.grpc.unary("updateProfile", { userId: "BAD", profile: { phone: "bad" } }, aliceToken));
    await expectDenied(svc.grpc.unary("deleteProfile", { userId: bob, etag: "\u0000".repeat(100) }, aliceToken));
    await expectDenied(
      svc.grpc.unary(
        "updatePreferences",
        { userId: "nope", preferences: { theme: "neon", language: "!!" }, updateMask: { paths: ["theme", "x"] } },
        aliceToken,
      ),
    );
  });

  it("WatchProfileEvents: PERMISSION_DENIED without profiles:watch, even with malformed ids, types or token", async () => {
    expect(await watchOutcome({ userIds: [bob, "nope"] }, aliceToken)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await watchOutcome({ userIds: ["nope"] }, aliceToken)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await watchOutcome({ resumeToken: "garbage!" }, aliceToken)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await watchOutcome({ userIds: [bob], types: [EventType.UNSPECIFIED] }, aliceToken)).toBe(
      grpc.status.PERMISSION_DENIED,
    );
  });
});

describe("requests the caller may make", () => {
  it("are still validated, with field violations", async () => {
    const own = await failure(svc.grpc.unary("updateProfile", { profile: { phone: "call me" } }, aliceToken));
    expect(own.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fieldViolations(own).map((v) => v.field)).toEqual(["profile.phone"]);

    const reader = await mintToken(randomUserId(), { scope: "profiles:read" });
    const scoped = await failure(svc.grpc.unary("batchGetProfiles", { userIds: [bob, "nope"] }, reader));
    expect(scoped.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fieldViolations(scoped).map((v) => v.field)).toEqual(["user_ids[1]"]);

    expect(await watchOutcome({ userIds: [alice], types: [EventType.UNSPECIFIED] }, aliceToken)).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    const watcher = await mintToken(randomUserId(), { scope: "profiles:watch" });
    expect(await watchOutcome({ userIds: ["nope"] }, watcher)).toBe(grpc.status.INVALID_ARGUMENT);
  });
});
