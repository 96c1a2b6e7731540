// The service on a real, password-protected Redis Cluster (3 masters, 3
// replicas): every node must be authenticated, not only the seed, and a seed
// list must survive a seed that is down.

import type { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheKeys } from "../src/cache/cache-keys.js";
import { freePort } from "./support/child-process.js";
import { PrivateRedisCluster } from "./support/private-redis-cluster.js";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { grpcProfileClient } from "./support/grpc-client.js";
import { createTestDatabase, uniqueKeyPrefix } from "./support/servers.js";
import { exercise, total } from "./support/private-redis-exercise.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

const PASSWORD = "cluster-secret";

let cluster: PrivateRedisCluster;
let inspect: Cluster;
let token: string;

beforeAll(async () => {
  cluster = await PrivateRedisCluster.start({ password: PASSWORD });
  inspect = cluster.client();
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  inspect?.disconnect();
  await cluster?.stop();
});

async function startOn(label: string, redisUrl: string): Promise<TestService> {
  return startTestService({
    label,
    env: { REDIS_URL: redisUrl, REDIS_CLUSTER: "true", REDIS_TIMEOUT_MS: "500" },
  });
}

describe("on a password-protected Redis Cluster", () => {
  it("authenticates on every node: every profile is cached, every write invalidates and publishes", async () => {
    const svc = await startOn("cluster_auth", cluster.url(cluster.nodes[0]!));
    try {
      const result = await exercise(svc, inspect, token, 12);
      console.log(`password-protected cluster, one seed: ${JSON.stringify(result)}`);
      expect(result).toEqual({ cached: 12, hitFraction: 1, events: 12 });

      // Writes invalidate on whichever node holds the key: a cached profile is replaced, not kept.
      const id = randomUserId();
      await svc.grpc.unary("updateProfile", { userId: id, profile: { firstName: "before" } }, token);
      await svc.grpc.unary("getProfile", { userId: id }, token);
      await expect.poll(() => inspect.exists(svc.keys.profile(id))).toBe(1);
      await svc.grpc.unary(
        "updateProfile",
        { userId: id, profile: { firstName: "after" }, updateMask: { paths: ["first_name"] } },
        token,
      );
      expect((await svc.grpc.unary("getProfile", { userId: id }, token)).profile?.firstName).toBe("after");
      expect(await total(svc, "invalidationFailures")).toBe(0);
      expect(await total(svc, "eventPublishFailures")).toBe(0);
    } finally {
      await svc.close();
    }
  });

  it("starts on a seed list whose first seed is down", async () => {
    const dead = `redis://:${PASSWORD}@127.0.0.1:${await freePort()}`;
    const seeds = [dead, ...cluster.nodes.slice(3, 5).map((n) => cluster.url(n))].join(",");
    const svc = await startOn("cluster_seeds", seeds);
    try {
      expect(await exercise(svc, inspect, token, 6)).toEqual({ cached: 6, hitFraction: 1, events: 6 });
    } finally {
      await svc.close();
    }
  });
});

describe("with a wrong password", () => {
  it("logs once per node that the cache is bypassed there, and still answers reads", async () => {
    const database = await createTestDatabase("cluster_wrong_password");
    const wrong = cluster.nodes.map((n) => cluster.url(n).replace(PASSWORD, "not-the-password")).join(",");
    const service = await ChildService.start(
      await serviceEnv(
        { databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("cluster_wrong_password"), redisUrl: wrong },
        {
          REDIS_CLUSTER: "true",
        },
      ),
    );
    const client = grpcProfileClient(`127.0.0.1:${service.port}`);
    try {
      const id = randomUserId();
      await client.unary("updateProfile", { userId: id, profile: { firstName: "no cache" } }, token);
      for (let i = 0; i < 5; i++) {
        expect((await client.unary("getProfile", { userId: id }, token)).profile?.firstName).toBe("no cache");
      }
      const rejected = () => service.logs.filter((l) => String(l.msg).startsWith("Redis rejected our credentials"));
      await expect.poll(() => rejected().length).toBeGreaterThan(0);
      expect(rejected()[0]).toMatchObject({ level: 50, err: expect.stringMatching(/WRONGPASS|invalid/) });
      const servers = rejected().map((l) => l.redis);
      expect(new Set(servers).size).toBe(servers.length);
      expect(service.output).not.toContain("not-the-password");
    } finally {
      client.close();
      await service.stop();
      await database.drop();
    }
  });
});

describe("DEL before PUBLISH on a cluster", () => {
  it("a subscriber that reads the cache on an event never finds the old value, even when the key's node is slower to reach", async () => {
    const keyPrefix = uniqueKeyPrefix("cluster_order");
    const keys = cacheKeys(keyPrefix);
    const channel = `${keyPrefix}profile:updated`;
    // Users whose profile key lives on one master, A. ioredis sends each PUBLISH
    // to any master, so two in three go to another node than A's DEL: with six
    // writes, the old value would be found unless the order is enforced.
    const candidates = Array.from({ length: 60 }, () => randomUserId());
    const owners = await cluster.mastersOf(candidates.map((id) => keys.profile(id)));
    const slow = owners[0]!;
    const ids = candidates.filter((_, i) => owners[i] === slow).slice(0, 6);
    expect(ids).toHaveLength(6);
    const other = owners.find((o) => o !== slow)!;

    // Everything the service sends to A now arrives 50 ms later; its PUBLISH goes to any master.
    const restore = await cluster.slowDown(slow, 50);
    const writer = await startTestService({
      label: "cluster_order",
      keyPrefix,
      env: { REDIS_URL: cluster.url(other), REDIS_CLUSTER: "true", REDIS_TIMEOUT_MS: "2000" },
    });
    const reader = cluster.direct(slow);
    const subscriber = cluster.direct(other);
    const seen = new Map<string, string | null>();
    subscriber.on("message", (_channel: string, message: string) => {
      const { user_id } = JSON.parse(message) as { user_id: string };
      reader.get(writer.keys.profile(user_id)).then(
        (value) => seen.set(user_id, value),
        (err: unknown) => seen.set(user_id, `error: ${String(err)}`),
      );
    });
    try {
      for (const id of ids) {
        await writer.grpc.unary("updateProfile", { userId: id, profile: { firstName: "old" } }, token);
      }
      await subscriber.subscribe(channel);
      for (const id of ids) {
        await writer.grpc.unary("getProfile", { userId: id }, token);
        await expect.poll(async () => (await reader.get(writer.keys.profile(id)))?.includes('"old"')).toBe(true);
        await writer.grpc.unary(
          "updateProfile",
          { userId: id, profile: { firstName: "new" }, updateMask: { paths: ["first_name"] } },
          token,
        );
        await expect.poll(() => seen.has(id)).toBe(true);
      }
      const stale = ids.filter((id) => seen.get(id) !== null);
      expect(stale.map((id) => seen.get(id))).toEqual([]);
    } finally {
      reader.disconnect();
      subscriber.disconnect();
      await writer.close();
      await restore();
    }
  });
});
