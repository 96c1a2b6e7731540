// A write stuck on a row lock when its replica shuts down is answered
// UNAVAILABLE, yet PostgreSQL still commits it once the lock is released,
// after the process has gone: nobody is left to invalidate its key. Another
// replica's relay must, within the documented bound.

import { once } from "node:events";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { grpc, grpcProfileClient } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { waitingOnLocks } from "./support/locks.js";

// README, "How the cache stays correct", with slack for a loaded 2-core machine.
const BOUND_MS = 3_000;

let other: TestService;

beforeAll(async () => {
  // The relay's defaults: the bound under test is the one operators get.
  other = await startTestService({ label: "shutdown_invalidation", env: { WARMUP_LIMIT: "0" } });
});
afterAll(async () => {
  await other?.close();
});

describe("a write answered UNAVAILABLE at shutdown that commits afterwards", () => {
  it("is invalidated by another replica's relay within the bound", async () => {
    const writer = await ChildService.start(
      await serviceEnv(
        { databaseUrl: other.database.url, keyPrefix: other.keyPrefix },
        {
          SHUTDOWN_GRACE_SECONDS: "1",
          // The lock wait must outlast the process, not end at the statement timeout.
          DB_STATEMENT_TIMEOUT_MS: "60000",
        },
      ),
    );
    const client = grpcProfileClient(`127.0.0.1:${writer.port}`);
    const locker = new pg.Client({ connectionString: other.database.url });
    await locker.connect();
    try {
      const user = randomUserId();
      const token = await mintToken(user);
      await client.unary("updateProfile", { profile: { firstName: "before" } }, token);
      expect((await other.grpc.unary("getProfile", {}, token)).profile?.firstName).toBe("before");
      await expect.poll(async () => (await other.redis.get(other.keys.profile(user)))?.includes('"before"')).toBe(true);

      await locker.query("BEGIN");
      await locker.query("SELECT 1 FROM profiles WHERE user_id = $1 FOR UPDATE", [user]);
      const stuck = client.unary("updateProfile", { profile: { firstName: "after" } }, token).then(
        () => grpc.status.OK,
        (err: grpc.ServiceError) => err.code,
      );
      await expect.poll(() => waitingOnLocks(locker)).toBe(1);

      const exited = once(writer.child, "exit");
      writer.child.kill("SIGTERM");
      expect(await stuck).toBe(grpc.status.UNAVAILABLE);
      await exited;

      // The process is gone; the statement it left behind now takes the lock and commits.
      await locker.query("COMMIT");
      const reader = new pg.Client({ connectionString: other.database.url });
      await reader.connect();
      try {
        await expect
          .poll(async () => {
            const { rows } = await reader.query<{ first_name: string }>(
              "SELECT first_name FROM profiles WHERE user_id = $1",
              [user],
            );
            return rows[0]?.first_name;
          })
          .toBe("after");
      } finally {
        await reader.end();
      }
      const committedAt = performance.now();

      await expect
        .poll(async () => (await other.grpc.unary("getProfile", {}, token)).profile?.firstName, {
          timeout: BOUND_MS + 5_000,
          interval: 50,
        })
        .toBe("after");
      const convergedMs = Math.round(performance.now() - committedAt);
      console.log(`Write committed after its replica exited: the other replica converged in ${convergedMs} ms`);
      expect(convergedMs).toBeLessThan(BOUND_MS);
    } finally {
      client.close();
      await locker.end().catch(() => {});
      await writer.stop("SIGKILL");
    }
  });
});
