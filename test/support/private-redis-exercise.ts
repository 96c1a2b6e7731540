// What a client of a private Redis deployment sees of the service: whether
// reads are cached and writes published there. Shared by the Cluster and
// Sentinel tests.

import type { Cluster, Redis } from "ioredis";
import { expect } from "vitest";
import { randomUserId, type TestService } from "./service.js";

export type CounterName = "cacheHits" | "invalidationFailures" | "eventPublishFailures" | "redisFallbacks";

export async function total(svc: TestService, name: CounterName): Promise<number> {
  return (await svc.app.metrics[name].get()).values.reduce((sum, v) => sum + v.value, 0);
}

export interface Exercised {
  /** Profiles whose value (not a lease) is in Redis after the reads. */
  cached: number;
  /** Reads after the first, per profile, answered from the cache. */
  hitFraction: number;
  /** Distinct profile:updated events for these users that a subscriber of `inspect` received. */
  events: number;
}

/**
 * Writes `users` profiles, reads each one four times, and reports what a
 * client of Redis saw: keys cached, reads served from the cache after the
 * first, and the events delivered.
 */
export async function exercise(
  svc: TestService,
  inspect: Redis | Cluster,
  token: string,
  users: number,
): Promise<Exercised> {
  const ids = Array.from({ length: users }, () => randomUserId());
  const subscriber = inspect.duplicate();
  subscriber.on("error", () => {});
  // Only these users' events, once each: the relay may publish other users' events again (at least once).
  const mine = new Set(ids);
  const events = new Set<string>();
  subscriber.on("message", (_channel: string, message: string) => {
    const { user_id, event_id } = JSON.parse(message) as { user_id: string; event_id: string };
    if (mine.has(user_id)) events.add(event_id);
  });
  await subscriber.subscribe(`${svc.keyPrefix}profile:updated`);
  try {
    for (const id of ids) await svc.grpc.unary("updateProfile", { userId: id, profile: { firstName: "c" } }, token);
    for (const id of ids) await svc.grpc.unary("getProfile", { userId: id }, token);
    // Fills land after the first reads answer.
    await new Promise((r) => setTimeout(r, 300));
    const hitsBefore = await total(svc, "cacheHits");
    for (let round = 0; round < 3; round++) {
      for (const id of ids) await svc.grpc.unary("getProfile", { userId: id }, token);
    }
    const hits = (await total(svc, "cacheHits")) - hitsBefore;
    // A value, not a lease: a read may have taken the lease but its fill never landed.
    const values = await Promise.all(ids.map((id) => inspect.get(svc.keys.profile(id)).catch(() => null)));
    const cached = values.filter((v) => v?.startsWith("{")).length;
    await expect
      .poll(() => events.size, { timeout: 2000 })
      .toBeGreaterThanOrEqual(users)
      .catch(() => {});
    return { cached, hitFraction: hits / (3 * users), events: events.size };
  } finally {
    subscriber.disconnect();
  }
}

/**
 * `reader` (started with READER_ENV: its outbox polled a minute apart) hears of
 * a write on `writer` within seconds only through its Redis subscription: a
 * watch opened on its hub gets the write's event. So this passes only when
 * that subscription works.
 */
export async function followsWrites(writer: TestService, reader: TestService, token: string): Promise<void> {
  const userId = randomUserId();
  const watcher = await reader.app.hub.open({ userIds: [userId] }, undefined, () => {});
  try {
    await writer.grpc.unary("updateProfile", { userId, profile: { firstName: "v1" } }, token);
    const firstEvent = (async () => {
      for await (const item of watcher) if (item.kind === "event") return item.event.userId;
      return undefined;
    })();
    // Seconds, against the minute of the reader's poll: a loaded CI machine has taken over 2 s.
    const late = new Promise<string>((r) => setTimeout(() => r("no event within 5 s"), 5000).unref());
    expect(await Promise.race([firstEvent, late])).toBe(userId);
  } finally {
    watcher.close();
  }
}

/** For the `reader` of followsWrites. */
export const READER_ENV = { EVENT_POLL_INTERVAL_MS: "60000" };

export interface Recovery {
  /** From the kill until a read's fill landed in Redis again. */
  cachingMs: number;
  /** From the kill until a write's DEL and PUBLISH both succeeded again. */
  invalidatingMs: number;
  /** Writes made (and acknowledged) between the kill and `invalidatingMs`, whose DEL or PUBLISH failed. */
  writesDuringOutage: number;
  failedDuringOutage: number;
}

/**
 * Writes and reads one user through the service every `intervalMs`, from
 * before a failover until both caching and invalidation work again, and
 * tells how long each was broken. Start it, fail Redis over, then call
 * `recovered(killedAt)`.
 *
 * Made for the failover tests; the outbox invalidation work can reuse it to
 * assert its own bound (the writes made during the outage are counted here).
 */
export class RecoveryProbe {
  private readonly samples: { at: number; invalidated: boolean; cached: boolean }[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly svc: TestService,
    private readonly token: string,
    /** Reads the raw cached value of a key, from outside the service. */
    private readonly readKey: (key: string) => Promise<string | null>,
    readonly userId: string = randomUserId(),
    private readonly intervalMs = 100,
  ) {
    this.loop = this.run();
  }

  /** Polls until both have recovered after `killedAt`, then stops. */
  async recovered(killedAt: number, timeoutMs = 30_000): Promise<Recovery> {
    const deadline = performance.now() + timeoutMs;
    try {
      for (;;) {
        const after = this.samples.filter((s) => s.at >= killedAt);
        const cached = after.find((s) => s.cached);
        const invalidated = after.find((s) => s.invalidated);
        if (cached !== undefined && invalidated !== undefined) {
          const outage = after.filter((s) => s.at < invalidated.at);
          return {
            cachingMs: Math.round(cached.at - killedAt),
            invalidatingMs: Math.round(invalidated.at - killedAt),
            writesDuringOutage: outage.length,
            failedDuringOutage: outage.filter((s) => !s.invalidated).length,
          };
        }
        if (performance.now() > deadline) {
          throw new Error(`no recovery within ${timeoutMs} ms: ${JSON.stringify(after.slice(-5))}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await this.stop();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    const key = this.svc.keys.profile(this.userId);
    for (let i = 0; !this.stopped; i++) {
      const at = performance.now();
      const failuresBefore =
        (await total(this.svc, "invalidationFailures")) + (await total(this.svc, "eventPublishFailures"));
      const name = `probe-${i}`;
      await this.svc.grpc.unary(
        "updateProfile",
        { userId: this.userId, profile: { firstName: name }, updateMask: { paths: ["first_name"] } },
        this.token,
      );
      const failuresAfter =
        (await total(this.svc, "invalidationFailures")) + (await total(this.svc, "eventPublishFailures"));
      await this.svc.grpc.unary("getProfile", { userId: this.userId }, this.token);
      // The fill lands just after the read answers.
      let cached = false;
      for (let tries = 0; tries < 6 && !cached; tries++) {
        // Bounded, so that an inspector waiting on a dead node does not slow the probe down.
        const value = await Promise.race([
          this.readKey(key).catch(() => null),
          new Promise<null>((r) => setTimeout(() => r(null), 200)),
        ]);
        cached = value?.includes(`"${name}"`) ?? false;
        if (!cached) await new Promise((r) => setTimeout(r, 25));
      }
      this.samples.push({ at, invalidated: failuresAfter === failuresBefore, cached });
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
  }
}
