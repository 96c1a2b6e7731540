// The client's unary side against the real service and against stand-ins that
// fail in known ways: a deadline on every call by default, retries after
// UNAVAILABLE only for the methods the proto marks idempotent (read from the
// generated descriptors), moving to the next address, and the etag loop of
// modifyProfile / modifyPreferences under real write conflicts.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { idempotentMethods, ProfileClient, status, type ServiceError } from "../client/src/index.js";
import { Health } from "../gen/health/v1/health_pb.js";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { FakeGrpcServer, type FakeBehaviour } from "./support/fake-grpc-server.js";
import { freePort } from "./support/child-process.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let svc: TestService;
let token: string;
const clients: ProfileClient[] = [];
const fakes: FakeGrpcServer[] = [];

beforeAll(async () => {
  svc = await startTestService({ label: "client_calls" });
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  for (const c of clients) c.close();
  for (const f of fakes) await f.close();
  await svc?.close();
});

function client(addresses: string[], options: Partial<ConstructorParameters<typeof ProfileClient>[0]> = {}) {
  const c = new ProfileClient({ addresses, token, ...options });
  clients.push(c);
  return c;
}

async function fake(behaviour: FakeBehaviour) {
  const f = await FakeGrpcServer.start(behaviour);
  fakes.push(f);
  return f;
}

const live = () => `127.0.0.1:${svc.port}`;

async function failure(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error("the call succeeded");
}

describe("which methods are retried", () => {
  it("is what the proto's idempotency_level says, read from the descriptors", () => {
    expect(idempotentMethods(ProfileService).sort()).toEqual(
      [
        "BatchGetProfiles",
        "DeleteProfile",
        "GetPreferences",
        "GetProfile",
        "UpdatePreferences",
        "UpdateProfile",
      ].sort(),
    );
    // The stream has no mark, and neither has any method of a proto that sets none.
    expect(idempotentMethods(ProfileService)).not.toContain("WatchProfileEvents");
    expect(idempotentMethods(Health)).toEqual([]);
  });
});

describe("deadlines", () => {
  it("sends one on every call by default, and ends a call that gets no answer with DEADLINE_EXCEEDED", async () => {
    const silent = await fake("hang");
    const abort = new AbortController();
    const call = client([silent.address]).getProfile({}, { signal: abort.signal });
    await expect.poll(() => silent.calls.length, { timeout: 5000 }).toBe(1);
    // grpc-timeout: the remaining time, at most 10 s, in some unit (grpc-js picks m for milliseconds).
    const header = String(silent.calls[0]!["grpc-timeout"]);
    expect(header).toMatch(/^\d+m$/);
    expect(Number(header.slice(0, -1))).toBeGreaterThan(9000);
    expect(Number(header.slice(0, -1))).toBeLessThanOrEqual(10_000);
    abort.abort(new Error("test is done with it"));
    await expect(call).rejects.toThrow("test is done with it");

    const started = Date.now();
    const err = await failure(client([silent.address], { timeoutMs: 300 }).getProfile({}));
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe("retries after UNAVAILABLE", () => {
  it("retries idempotent calls on the next address: a replica answering UNAVAILABLE, then a closed port", async () => {
    const unavailable = await fake({ status: status.UNAVAILABLE, message: "shutting down" });
    const retries: string[] = [];
    const c = client([unavailable.address, live()]);
    const written = await c.updateProfile(
      { profile: { firstName: "Retried" } },
      { onRetry: (r) => retries.push(`${r.address} ${status[r.error.code]}`) },
    );
    expect(written.profile?.firstName).toBe("Retried");
    expect(retries).toEqual([`${unavailable.address} UNAVAILABLE`]);
    expect(unavailable.callsTo("UpdateProfile")).toBe(1);
    // The client stays on the address that worked.
    expect((await c.getProfile({})).profile?.firstName).toBe("Retried");
    expect(unavailable.callsTo("GetProfile")).toBe(0);

    const closed = `127.0.0.1:${await freePort()}`;
    const fromClosed = await client([closed, live()]).getProfile({});
    expect(fromClosed.profile?.firstName).toBe("Retried");
  });

  it("gives up after maxAttempts with the last UNAVAILABLE, and retries no other code", async () => {
    const unavailable = await fake({ status: status.UNAVAILABLE });
    const err = await failure(client([unavailable.address], { retry: { maxAttempts: 3 } }).getProfile({}));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(unavailable.callsTo("GetProfile")).toBe(3);

    for (const code of [status.INTERNAL, status.RESOURCE_EXHAUSTED, status.ABORTED]) {
      const other = await fake({ status: code });
      const e = await failure(client([other.address, live()]).getProfile({}));
      expect(e.code).toBe(code);
      expect(other.callsTo("GetProfile")).toBe(1);
    }
  });
});

describe("the etag loop", () => {
  const WORKERS = 8;
  const ROUNDS = 5;

  /** WORKERS concurrent writers each add 1 to a counter kept in `bio`, ROUNDS times. */
  async function increments(addOne: (c: ProfileClient, user: string) => Promise<void>): Promise<number> {
    const user = randomUserId();
    const c = client([live()]);
    await c.updateProfile({ userId: user, profile: { firstName: "Counter", bio: "0" } });
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        for (let i = 0; i < ROUNDS; i++) await addOne(c, user);
      }),
    );
    return Number((await c.getProfile({ userId: user })).profile!.bio);
  }

  it("modifyProfile loses no increment among concurrent writers; a plain read-then-write does", async () => {
    let conflicts = 0;
    const withEtag = await increments(async (c, user) => {
      await c.modifyProfile(
        user,
        (current) => ({ profile: { bio: String(Number(current!.bio) + 1) }, updateMask: ["bio"] }),
        { onConflict: () => conflicts++, maxAttempts: 50 },
      );
    });
    const withoutEtag = await increments(async (c, user) => {
      const current = (await c.getProfile({ userId: user })).profile!;
      await c.updateProfile({
        userId: user,
        profile: { bio: String(Number(current.bio) + 1) },
        updateMask: { paths: ["bio"] },
      });
    });
    console.log(
      `etag loop: ${WORKERS} writers x ${ROUNDS} increments: ${withEtag} with the loop (${conflicts} conflicts retried), ` +
        `${withoutEtag} with a plain read-then-write`,
    );
    expect(withEtag).toBe(WORKERS * ROUNDS);
    expect(conflicts).toBeGreaterThan(0);
    // The same race without the etag: increments are lost, so the first figure is not luck.
    expect(withoutEtag).toBeLessThan(WORKERS * ROUNDS);
  });

  it("gives up after maxAttempts with ABORTED, and writes nothing when the change is undefined", async () => {
    const user = randomUserId();
    const c = client([live()]);
    const other = client([live()]);
    await c.updateProfile({ userId: user, profile: { firstName: "A" } });
    // Every attempt is overtaken: another write lands between its read and its write.
    let reads = 0;
    let conflicts = 0;
    const err = await failure(
      c.modifyProfile(
        user,
        async (current) => {
          reads++;
          await other.updateProfile({
            userId: user,
            profile: { bio: `overtaken ${reads}` },
            updateMask: { paths: ["bio"] },
          });
          return { profile: { firstName: `${current!.firstName}!` }, updateMask: ["first_name"] };
        },
        { maxAttempts: 3, onConflict: () => conflicts++ },
      ),
    );
    expect(err.code).toBe(status.ABORTED);
    expect([reads, conflicts]).toEqual([3, 2]);
    const after = (await c.getProfile({ userId: user })).profile!;
    expect(after.firstName).toBe("A");

    const unchanged = await c.modifyProfile(user, () => undefined);
    expect(unchanged?.etag).toBe(after.etag);
  });

  it("modifyPreferences creates preferences that do not exist yet, then changes them under the etag", async () => {
    const user = randomUserId();
    const c = client([live()]);
    const created = await c.modifyPreferences(user, (current) => {
      expect(current).toBeUndefined();
      return { preferences: { theme: "dark", language: "ja" } };
    });
    expect(created).toMatchObject({ theme: "dark", language: "ja" });
    const changed = await c.modifyPreferences(user, (current) => ({
      preferences: { theme: current!.theme === "dark" ? "light" : "dark" },
      updateMask: ["theme"],
    }));
    expect(changed).toMatchObject({ theme: "light", language: "ja" });
    expect(changed!.etag).not.toBe(created!.etag);
  });
});
