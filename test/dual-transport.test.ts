// One API layer, two transports: gRPC on PORT (grpc-js) and Connect on
// HTTP_PORT (Connect-ES). The same cases run over both, and must answer the
// same: auth, access rules, validation, errors, per-RPC metrics, the watch's
// first bookmark, and shutdown (calls still running answer UNAVAILABLE).

import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../gen/google/rpc/error_details_pb.js";
import type { QueryResult } from "../src/store/database.js";
import { DatabaseDecorator } from "./support/database-decorator.js";
import { fieldViolations, grpc } from "./support/grpc-client.js";
import { sample } from "./support/prometheus.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

/** Holds every profile read while `held` is set, so a call can be caught in flight. */
class HoldingDatabase extends DatabaseDecorator {
  held: Promise<void> | undefined;
  override async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    if (this.held !== undefined && /FROM profiles/i.test(text)) await this.held;
    return this.inner.query<R>(text, params);
  }
}

let svc: TestService;
let db: HoldingDatabase;

beforeAll(async () => {
  svc = await startTestService({
    label: "dual_transport",
    decorateStores: (stores) => ({ ...stores, db: (db = new HoldingDatabase(stores.db)) }),
  });
});
afterAll(async () => {
  await svc?.close();
});

interface Failure {
  code: number;
  message: string;
  fields: string[];
}

type Unary = "getProfile" | "updateProfile" | "batchGetProfiles";

interface Transport {
  name: string;
  call(method: Unary, request: object, token?: string): Promise<unknown>;
  firstWatchMessage(request: object, token: string): Promise<string | undefined>;
  failure(err: unknown): Failure;
}

const transports: Transport[] = [
  {
    name: "gRPC (grpc-js, PORT)",
    call: (method, request, token) => svc.grpc.unary(method, request, token),
    firstWatchMessage: (request, token) =>
      new Promise((resolve, reject) => {
        const call = svc.grpc.stream(request, token);
        call.once("data", (res: { kind: { case: string | undefined } }) => {
          resolve(res.kind.case);
          call.cancel();
        });
        call.once("error", reject);
      }),
    failure: (err) => {
      const e = err as grpc.ServiceError;
      return { code: e.code, message: e.details, fields: fieldViolations(e).map((v) => v.field) };
    },
  },
  {
    name: "Connect (Connect-ES, HTTP_PORT)",
    call: (method, request, token) =>
      (svc.connect[method] as (req: object, options: object) => Promise<unknown>)(request, {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      }),
    firstWatchMessage: async (request, token) => {
      const controller = new AbortController();
      const stream = svc.connect.watchProfileEvents(request, {
        headers: { authorization: `Bearer ${token}` },
        signal: controller.signal,
      });
      for await (const res of stream) {
        controller.abort();
        return res.kind.case;
      }
      return undefined;
    },
    failure: (err) => {
      const e = ConnectError.from(err);
      return {
        code: e.code,
        message: e.rawMessage,
        fields: e.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field)),
      };
    },
  },
];

async function failureOf(t: Transport, call: Promise<unknown>): Promise<Failure> {
  try {
    await call;
  } catch (err) {
    return t.failure(err);
  }
  throw new Error("the call succeeded");
}

async function handled(method: string, code: string): Promise<number> {
  const text = await svc.app.metrics.registry.metrics();
  const labels = {
    grpc_service: "profile.v1.ProfileService",
    grpc_method: method,
    grpc_type: "unary",
    grpc_code: code,
  };
  return sample(text, "grpc_server_handled_total", labels) ?? 0;
}

describe.each(transports)("over $name", (t) => {
  it("writes and reads back a profile with the caller's token", async () => {
    const user = randomUserId();
    const token = await mintToken(user);
    await t.call("updateProfile", { profile: { firstName: "Dual" } }, token);
    const res = (await t.call("getProfile", {}, token)) as { profile?: { firstName: string; userId: string } };
    expect(res.profile).toMatchObject({ firstName: "Dual", userId: user });
  });

  it("answers a call without a token UNAUTHENTICATED", async () => {
    const failure = await failureOf(t, t.call("getProfile", {}));
    expect(failure.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(failure.message).toMatch(/authorization/);
  });

  it("answers another user's data PERMISSION_DENIED before validating (AIP-211)", async () => {
    const token = await mintToken(randomUserId());
    const failure = await failureOf(t, t.call("getProfile", { userId: "not-a-uuid" }, token));
    expect(failure.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(failure.fields).toEqual([]);
  });

  it("answers a malformed request INVALID_ARGUMENT naming every bad field", async () => {
    const token = await mintToken(randomUserId(), { scope: "profiles:read" });
    const failure = await failureOf(t, t.call("batchGetProfiles", { userIds: [randomUserId(), "x", "y"] }, token));
    expect(failure.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(failure.fields).toEqual(["user_ids[1]", "user_ids[2]"]);
  });

  it("answers a missing profile NOT_FOUND", async () => {
    const failure = await failureOf(t, t.call("getProfile", {}, await mintToken(randomUserId())));
    expect(failure.code).toBe(grpc.status.NOT_FOUND);
  });

  it("counts each call once in grpc_server_handled_total, with its code", async () => {
    const token = await mintToken(randomUserId());
    const before = await handled("GetProfile", "NotFound");
    await failureOf(t, t.call("getProfile", {}, token));
    await expect.poll(() => handled("GetProfile", "NotFound")).toBe(before + 1);
  });

  it("opens a watch with a bookmark, and refuses someone else's without the scope", async () => {
    const user = randomUserId();
    const token = await mintToken(user);
    expect(await t.firstWatchMessage({ userIds: [user] }, token)).toBe("bookmark");
    const failure = await failureOf(t, t.firstWatchMessage({ userIds: [randomUserId()] }, token));
    expect(failure.code).toBe(grpc.status.PERMISSION_DENIED);
  });
});

describe("at shutdown", () => {
  it("answers the calls still running UNAVAILABLE on both transports", async () => {
    const user = randomUserId();
    const token = await mintToken(user);
    await transports[0]!.call("updateProfile", { profile: { firstName: "Held" } }, token);
    await svc.redis.del(svc.keys.profile(user));
    let release!: () => void;
    db.held = new Promise<void>((resolve) => (release = resolve));
    try {
      const calls = transports.map((t) => failureOf(t, t.call("getProfile", {}, token)));
      await new Promise((r) => setTimeout(r, 300));
      svc.app.abortInFlight();
      for (const failure of await Promise.all(calls)) {
        expect(failure.code).toBe(grpc.status.UNAVAILABLE);
        expect(failure.message).toMatch(/shutting down/);
      }
    } finally {
      db.held = undefined;
      release();
    }
  });
});
