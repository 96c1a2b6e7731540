// SHUTDOWN_GRACE_SECONDS is a promise to whoever sends SIGTERM: the process
// is gone within it, even with a call stuck on a row lock that never frees.

import { once } from "node:events";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { grpc, grpcProfileClient } from "./support/grpc-client.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { waitingOnLocks } from "./support/locks.js";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase("shutdown_grace");
});
afterAll(async () => {
  await database?.drop();
});

describe.each([1, 3])("SHUTDOWN_GRACE_SECONDS=%i with a write stuck on a row lock", (graceSeconds) => {
  it("answers the stuck call UNAVAILABLE, logs stopped and exits 0 before the grace ends", async () => {
    const service = await ChildService.start(
      await serviceEnv(
        { databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("shutdown_grace") },
        {
          SHUTDOWN_GRACE_SECONDS: String(graceSeconds),
          // The lock wait must outlast the grace, not end at the statement timeout.
          DB_STATEMENT_TIMEOUT_MS: "60000",
        },
      ),
    );
    const client = grpcProfileClient(`127.0.0.1:${service.port}`);
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    try {
      const user = randomUserId();
      const token = await mintToken(user);
      await client.unary("updateProfile", { profile: { firstName: "Before" } }, token);
      await locker.query("BEGIN");
      await locker.query("SELECT 1 FROM profiles WHERE user_id = $1 FOR UPDATE", [user]);
      const stuck = client.unary("updateProfile", { profile: { firstName: "Stuck" } }, token).then(
        () => grpc.status.OK,
        (err: grpc.ServiceError) => err.code,
      );
      // The write is waiting on the lock once PostgreSQL shows it waiting.
      await expect.poll(() => waitingOnLocks(locker)).toBe(1);

      const exited = once(service.child, "exit");
      const signalled = performance.now();
      // Exactly the service's own process, as a container runtime signals PID 1.
      service.child.kill("SIGTERM");
      await exited;
      const exitMs = performance.now() - signalled;

      expect(await stuck).toBe(grpc.status.UNAVAILABLE);
      expect(service.exitCode).toBe(0);
      expect(service.logs.some((l) => l.msg === "stopped")).toBe(true);
      expect(exitMs).toBeLessThan(graceSeconds * 1000);
    } finally {
      client.close();
      await locker.end();
      await service.stop("SIGKILL");
    }
  });
});
