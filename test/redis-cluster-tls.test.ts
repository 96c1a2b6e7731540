// The service on a Redis Cluster that speaks TLS only (clients, replication
// and the cluster bus), with a self-signed certificate and a password: the
// CA comes from REDIS_TLS_CA_FILE, and every node, not only the seed, is
// reached over TLS with AUTH.

import type { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrivateRedisCluster } from "./support/private-redis-cluster.js";
import { exercise, total } from "./support/private-redis-exercise.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let cluster: PrivateRedisCluster;
let inspect: Cluster;
let token: string;

beforeAll(async () => {
  cluster = await PrivateRedisCluster.start({ password: "tls-secret", tls: true });
  inspect = cluster.client();
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  inspect?.disconnect();
  await cluster?.stop();
});

function startOn(label: string, env: Record<string, string>): Promise<TestService> {
  const seeds = cluster.nodes.slice(0, 2).map((n) => cluster.url(n));
  return startTestService({
    label,
    env: { REDIS_URL: seeds.join(","), REDIS_CLUSTER: "true", REDIS_TIMEOUT_MS: "500", ...env },
  });
}

describe("rediss:// to a cluster", () => {
  it("caches and publishes over TLS, trusting the CA in REDIS_TLS_CA_FILE", async () => {
    expect(cluster.url(cluster.nodes[0]!)).toMatch(/^rediss:\/\//);
    const svc = await startOn("cluster_tls", { REDIS_TLS_CA_FILE: cluster.caFile! });
    try {
      expect(await exercise(svc, inspect, token, 8)).toEqual({ cached: 8, hitFraction: 1, events: 8 });
      expect(await total(svc, "invalidationFailures")).toBe(0);
    } finally {
      await svc.close();
    }
  });

  it("verifies the certificate: without the CA nothing reaches the cluster, and reads still answer", async () => {
    // REDIS_TIMEOUT_MS bounds the wait for a subscription that cannot succeed (20 × the timeout).
    const svc = await startOn("cluster_tls_untrusted", { REDIS_TIMEOUT_MS: "100" });
    try {
      const id = randomUserId();
      await svc.grpc.unary("updateProfile", { userId: id, profile: { firstName: "untrusted" } }, token);
      expect((await svc.grpc.unary("getProfile", { userId: id }, token)).profile?.firstName).toBe("untrusted");
      expect(await inspect.exists(svc.keys.profile(id))).toBe(0);
      expect(await total(svc, "redisFallbacks")).toBeGreaterThan(0);
    } finally {
      await svc.close();
    }
  });
});

describe("rediss:// to a cluster that announces host names, as managed clusters do", () => {
  let named: PrivateRedisCluster;
  let inspectNamed: Cluster;
  beforeAll(async () => {
    // The certificate names localhost only, no IP: a connection made to an address would fail verification.
    named = await PrivateRedisCluster.start({ password: "tls-secret", tls: true, hostname: "localhost" });
    inspectNamed = named.client();
  });
  afterAll(async () => {
    inspectNamed?.disconnect();
    await named?.stop();
  });

  it("reaches the seed by its name, so its certificate verifies, and every node by the name it announces", async () => {
    expect(named.url(named.nodes[0]!)).toMatch(/^rediss:\/\/:tls-secret@localhost:/);
    const svc = await startTestService({
      label: "cluster_tls_names",
      env: {
        REDIS_URL: named.url(named.nodes[0]!),
        REDIS_CLUSTER: "true",
        REDIS_TLS_CA_FILE: named.caFile!,
        REDIS_TIMEOUT_MS: "500",
      },
    });
    try {
      expect(await exercise(svc, inspectNamed, token, 6)).toEqual({ cached: 6, hitFraction: 1, events: 6 });
    } finally {
      await svc.close();
    }
  });
});
