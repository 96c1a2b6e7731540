// PostgreSQL is the source of truth: without it, writes and cache misses answer
// UNAVAILABLE (never INTERNAL), cached reads keep working, and the service recovers.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpc } from "./support/grpc-client.js";
import { PrivatePostgres } from "./support/private-postgres.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { codeOf } from "./support/status.js";
import { mintToken } from "./support/tokens.js";

let pg: PrivatePostgres;
let svc: TestService;
let token: string;

beforeAll(async () => {
  pg = await PrivatePostgres.start();
  svc = await startTestService({
    label: "pg_failure",
    database: { url: pg.url, name: "postgres", drop: async () => {} },
    env: { DB_STATEMENT_TIMEOUT_MS: "2000" },
  });
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
}, 120_000);
afterAll(async () => {
  await svc?.close();
  await pg?.destroy();
});

// One outage, in order: each test below is a step of it, and relies on the ones before.
describe("with PostgreSQL stopped", () => {
  const cached = randomUserId();

  beforeAll(async () => {
    await svc.grpc.unary("updateProfile", { userId: cached, profile: { firstName: "cached" } }, token);
    await svc.grpc.unary("getProfile", { userId: cached }, token);
    await pg.stop();
  });

  it("serves cached reads", async () => {
    expect((await svc.grpc.unary("getProfile", { userId: cached }, token)).profile?.firstName).toBe("cached");
  });

  it("answers UNAVAILABLE for a cache miss", async () => {
    expect(await codeOf(svc.grpc.unary("getProfile", { userId: randomUserId() }, token))).toBe(grpc.status.UNAVAILABLE);
  });

  it("answers UNAVAILABLE for writes", async () => {
    expect(await codeOf(svc.grpc.unary("updateProfile", { userId: cached, profile: { firstName: "x" } }, token))).toBe(
      grpc.status.UNAVAILABLE,
    );
    expect(await codeOf(svc.grpc.unary("deleteProfile", { userId: cached }, token))).toBe(grpc.status.UNAVAILABLE);
  });

  it("answers UNAVAILABLE for a batch with a miss in it", async () => {
    expect(await codeOf(svc.grpc.unary("batchGetProfiles", { userIds: [cached, randomUserId()] }, token))).toBe(
      grpc.status.UNAVAILABLE,
    );
  });

  it("recovers once PostgreSQL returns", async () => {
    await pg.start();
    await expect
      .poll(() => codeOf(svc.grpc.unary("updateProfile", { userId: cached, profile: { firstName: "back" } }, token)), {
        timeout: 15_000,
        interval: 250,
      })
      .toBe(grpc.status.OK);
    expect((await svc.grpc.unary("getProfile", { userId: cached }, token)).profile?.firstName).toBe("back");
  });
});
