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


describe("with PostgreSQL stopped", () => {
  it("answers UNAVAILABLE for writes and misses, serves cached reads, and recovers", async () => {
    const cached = randomUserId();
    await svc.grpc.unary("updateProfile", { userId: cached, profile: { firstName: "cached" } }, token);
    await svc.grpc.unary("getProfile", { userId: cached }, token);

    await pg.stop();
    expect((await svc.grpc.unary("getProfile", { userId: cached }, token)).profile?.firstName).toBe("cached");
    expect(await codeOf(svc.grpc.unary("getProfile", { userId: randomUserId() }, token))).toBe(grpc.status.UNAVAILABLE);
    expect(await codeOf(svc.grpc.unary("updateProfile", { userId: cached, profile: { firstName: "x" } }, token))).toBe(grpc.status.UNAVAILABLE);
    expect(await codeOf(svc.grpc.unary("deleteProfile", { userId: cached }, token))).toBe(grpc.status.UNAVAILABLE);
    expect(await codeOf(svc.grpc.unary("batchGetProfiles", { userIds: [cached, randomUserId()] }, token))).toBe(grpc.status.UNAVAILABLE);

    await pg.start();
    await expect
      .poll(() => codeOf(svc.grpc.unary("updateProfile", { userId: cached, profile: { firstName: "back" } }, token)), { timeout: 15_000, interval: 250 })
      .toBe(grpc.status.OK);
    expect((await svc.grpc.unary("getProfile", { userId: cached }, token)).profile?.firstName).toBe("back");
  });
});
