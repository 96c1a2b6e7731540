// A Redis Cluster master SIGKILLed under load: its replica is promoted, and
// the service caches, invalidates and publishes on that slot again. The
// numbers are printed for the README and for the outbox invalidation work,
// which will bound how long a write made during the outage stays invisible.

import type { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheKeys } from "../src/cache/cache-keys.js";
import { FailurePolicy } from "../src/store/failure-policy.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { RedisEventBus } from "../src/store/redis-event-bus.js";
import { PrivateRedisCluster } from "./support/private-redis-cluster.js";
import { exercise, READER_ENV, RecoveryProbe, followsWrites, total } from "./support/private-redis-exercise.js";
import { uniqueKeyPrefix } from "./support/servers.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let cluster: PrivateRedisCluster;
let inspect: Cluster;
let token: string;
let writer: TestService;
let reader: TestService;

beforeAll(async () => {
  cluster = await PrivateRedisCluster.start({ password: "failover-secret" });
  inspect = cluster.client();
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
  const env = {
    REDIS_URL: cluster.seedList,
    REDIS_CLUSTER: "true",
    // Failed publishes stay failed during the test: the relay would retry them after this.
    EVENT_RELAY_GRACE_MS: "60000",
  };
  const keyPrefix = uniqueKeyPrefix("cluster_failover");
  writer = await startTestService({
    label: "cluster_failover",
    keyPrefix,
    env,
  });
  reader = await startTestService({
    label: "cluster_failover_b",
    env: { ...env, ...READER_ENV },
    database: writer.database,
    keyPrefix,
  });
});
afterAll(async () => {
  inspect?.disconnect();
  await reader?.close();
  await writer?.close();
  await cluster?.stop();
});

describe("a Redis Cluster master failover", () => {
  it("recovers caching, invalidation and publishing on the failed slot after the replica is promoted", async () => {
    const keys = cacheKeys(writer.keyPrefix);
    // Two users on one master: one probed throughout, one written only during the outage.
    const candidates = Array.from({ length: 30 }, () => randomUserId());
    const owners = await cluster.mastersOf(candidates.map((id) => keys.profile(id)));
    const [probed, outageUser] = candidates.filter((_, i) => owners[i] === owners[0]);
    expect(outageUser).toBeDefined();

    await writer.grpc.unary("updateProfile", { userId: outageUser, profile: { firstName: "before" } }, token);
    await writer.grpc.unary("getProfile", { userId: outageUser }, token);
    await expect.poll(async () => (await inspect.get(keys.profile(outageUser!)))?.includes('"before"')).toBe(true);

    const probe = new RecoveryProbe(writer, token, (key) => inspect.get(key), probed);
    await new Promise((r) => setTimeout(r, 300));
    const failing = cluster.killMasterAndAwaitPromotion(keys.profile(probed!));
    // During the outage, once the cluster has marked the master failed (cluster-node-timeout, 1 s).
    await new Promise((r) => setTimeout(r, Number(process.env.OUTAGE_WRITE_AT_MS ?? 1200)));
    const invalidationFailures = await total(writer, "invalidationFailures");
    await writer.grpc.unary(
      "updateProfile",
      { userId: outageUser, profile: { firstName: "during" }, updateMask: { paths: ["first_name"] } },
      token,
    );
    const outageWriteInvalidated = (await total(writer, "invalidationFailures")) === invalidationFailures;
    const failover = await failing;
    const recovery = await probe.recovered(failover.killedAt);
    const promotionMs = Math.round(failover.promotedAt - failover.killedAt);

    // What the outage write looks like afterwards: this is what invalidation from the outbox is to fix.
    let staleReads = 0;
    for (let i = 0; i < 10; i++) {
      const name = (await writer.grpc.unary("getProfile", { userId: outageUser }, token)).profile?.firstName;
      if (name === "before") staleReads++;
    }
    const ttlLeft = await inspect.ttl(keys.profile(outageUser!));
    console.log(
      `Cluster failover: promotion after ${promotionMs} ms; ${JSON.stringify(recovery)}; ` +
        `the write made during the outage: DEL ${outageWriteInvalidated ? "landed" : "failed"}, ` +
        `${staleReads} of 10 reads after recovery returned the old value, TTL left ${ttlLeft} s`,
    );
    expect(recovery.cachingMs).toBeLessThan(promotionMs + 5000);
    expect(recovery.invalidatingMs).toBeLessThan(promotionMs + 5000);

    // The other instance's subscriber, wherever it was, is live again; every slot caches.
    await followsWrites(writer, reader, token);
    expect(await exercise(writer, inspect, token, 12)).toEqual({ cached: 12, hitFraction: 1, events: 12 });

    // Back to three replicas for the next test: the old master rejoins as a replica.
    await cluster.restart(failover.killed);
    await cluster.awaitOk();
  });

  it("moves a subscription off a node that dies, and reports the gap", async () => {
    const client = createRedisClient({ url: cluster.seedList, cluster: true });
    const bus = new RedisEventBus(client, new FailurePolicy({ timeoutMs: 1000 }));
    const channel = `${uniqueKeyPrefix("cluster_subscriber")}ch`;
    const statuses: boolean[] = [];
    const received: string[] = [];
    try {
      expect(await waitUntilReady(client, 5000)).toBe(true);
      await bus.subscribe(
        [channel],
        (_c, m) => received.push(m),
        (live) => statuses.push(live),
      );
      // PUBSUB NUMSUB answers for the node's own subscribers: it finds the node we listen on.
      const counts = await Promise.all(
        cluster.nodes.map(async (n) => {
          const redis = cluster.direct(n);
          try {
            return ((await redis.pubsub("NUMSUB", channel)) as [string, number])[1];
          } finally {
            redis.disconnect();
          }
        }),
      );
      const listening = cluster.nodes[counts.indexOf(1)]!;
      // The cluster may still be settling from the previous test's failover: publish until heard.
      await expect
        .poll(
          async () => {
            if (!received.includes("before")) await bus.publish(channel, "before").catch(() => {});
            return received.includes("before");
          },
          { timeout: 10_000 },
        )
        .toBe(true);

      await cluster.kill(listening);
      await expect.poll(() => statuses.includes(false)).toBe(true);
      await cluster.awaitOk();
      await expect.poll(() => statuses.at(-1), { timeout: 10_000 }).toBe(true);
      await expect
        .poll(
          async () => {
            await bus.publish(channel, "after").catch(() => {});
            return received.includes("after");
          },
          { timeout: 10_000 },
        )
        .toBe(true);
      await cluster.restart(listening);
    } finally {
      await bus.close();
      client.disconnect();
    }
  });
});
