// Health follows PostgreSQL: SERVING while it answers, NOT_SERVING when it
// refuses or stalls, and NOT_SERVING for good once shutdown begins.

import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDatabaseProbe } from "../src/server/database-probe.js";
import { HealthStatus, LIVENESS, OVERALL, ServingStatus } from "../src/server/health.js";
import { PgDatabase } from "../src/store/pg-database.js";
import { freePort } from "./support/child-process.js";
import { adminDatabaseUrl } from "./support/servers.js";

const SERVICE = "profile.v1.ProfileService";

describe("HealthStatus", () => {
  it("starts NOT_SERVING, tells watchers of changes only, and stays NOT_SERVING after shutdown", () => {
    const health = new HealthStatus([SERVICE]);
    expect(health.get(OVERALL)).toBe(ServingStatus.NOT_SERVING);
    expect(health.get("unknown")).toBeUndefined();
    const seen: ServingStatus[] = [];
    const unwatch = health.watch(SERVICE, (s) => seen.push(s));

    health.setAll(ServingStatus.SERVING);
    health.setAll(ServingStatus.SERVING);
    expect(health.get(OVERALL)).toBe(ServingStatus.SERVING);
    health.shutdown();
    health.setAll(ServingStatus.SERVING);
    health.set(SERVICE, ServingStatus.SERVING);
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    expect(health.get(OVERALL)).toBe(ServingStatus.NOT_SERVING);

    unwatch();
    expect([...health.all().keys()]).toEqual([OVERALL, SERVICE, LIVENESS]);
    expect(health.get(LIVENESS)).toBe(ServingStatus.NOT_SERVING);
  });
});

describe("database probe", () => {
  // A server that accepts connections and never answers: a stalled PostgreSQL.
  let stalled: Server;
  let stalledPort: number;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    stalled = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((r) => stalled.listen(0, "127.0.0.1", r));
    stalledPort = (stalled.address() as { port: number }).port;
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    stalled?.close();
  });

  const pgAt = (url: string) =>
    new PgDatabase({ connectionString: url, max: 1, statementTimeoutMs: 1000, connectionTimeoutMs: 5000 });

  it("goes SERVING on a reachable PostgreSQL, on its own schedule", async () => {
    const db = pgAt(adminDatabaseUrl);
    const health = new HealthStatus([SERVICE]);
    const changes: boolean[] = [];
    const probe = startDatabaseProbe(db, health, {
      intervalMs: 20,
      timeoutMs: 1000,
      onChange: (up) => changes.push(up),
    });
    try {
      await expect.poll(() => health.get(SERVICE)).toBe(ServingStatus.SERVING);
      expect(health.get(OVERALL)).toBe(ServingStatus.SERVING);
      expect(changes).toEqual([true]);
    } finally {
      probe.stop();
      await db.close();
    }
  });

  it("goes NOT_SERVING when PostgreSQL refuses connections", async () => {
    const db = pgAt(`postgres://postgres@127.0.0.1:${await freePort()}/postgres`);
    const health = new HealthStatus([SERVICE]);
    health.setAll(ServingStatus.SERVING);
    const probe = startDatabaseProbe(db, health, { intervalMs: 60_000, timeoutMs: 1000 });
    try {
      expect(await probe.probe()).toBe(false);
      expect(health.get(SERVICE)).toBe(ServingStatus.NOT_SERVING);
      expect(health.get(OVERALL)).toBe(ServingStatus.NOT_SERVING);
      // Liveness does not follow the database: an outage must not get every pod restarted.
      expect(health.get(LIVENESS)).toBe(ServingStatus.SERVING);
    } finally {
      probe.stop();
      await db.close();
    }
  });

  it("goes NOT_SERVING within its timeout when PostgreSQL stalls", async () => {
    const db = pgAt(`postgres://postgres@127.0.0.1:${stalledPort}/postgres`);
    const health = new HealthStatus([SERVICE]);
    health.setAll(ServingStatus.SERVING);
    const probe = startDatabaseProbe(db, health, { intervalMs: 60_000, timeoutMs: 150 });
    try {
      const started = performance.now();
      expect(await probe.probe()).toBe(false);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(health.get(SERVICE)).toBe(ServingStatus.NOT_SERVING);
    } finally {
      probe.stop();
      for (const s of sockets) s.destroy();
      await db.close();
    }
  });

  it("cannot bring a server that is shutting down back to SERVING", async () => {
    const db = pgAt(adminDatabaseUrl);
    const health = new HealthStatus([SERVICE]);
    health.shutdown();
    const probe = startDatabaseProbe(db, health, { intervalMs: 60_000 });
    try {
      expect(await probe.probe()).toBe(true);
      expect(health.get(OVERALL)).toBe(ServingStatus.NOT_SERVING);
    } finally {
      probe.stop();
      await db.close();
    }
  });
});
