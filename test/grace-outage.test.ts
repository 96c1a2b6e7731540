// Serving stale when PostgreSQL is down, with a private PostgreSQL really
// stopped (pg_ctl stop -m immediate): one outage for three services on the
// same database, with 1 s TTLs so keys expire fast. Grace on (300 s) on a
// single Redis, grace off (the default) on another key prefix, and grace on
// on a Redis Cluster. For each: keys expired within grace, a key written just
// before the stop, and a key never cached.

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { captureLog, type CapturedLog } from "./support/captured-log.js";
import { genericClient, grpc } from "./support/grpc-client.js";
import { PrivatePostgres } from "./support/private-postgres.js";
import { PrivateRedisCluster } from "./support/private-redis-cluster.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { codeOf } from "./support/status.js";
import { mintToken } from "./support/tokens.js";

const EXPIRED = 20;
const ROUNDS = 5;
const GRACE_SECONDS = 300;

let pg: PrivatePostgres;
let cluster: PrivateRedisCluster;
let inspect: Cluster;
let on: TestService;
let off: TestService;
let onCluster: TestService;
let onLog: CapturedLog;
let token: string;

const expired = Array.from({ length: EXPIRED }, randomUserId);
// One per service: each has its own key prefix (or Redis), so a write invalidates only its own service's keys.
const written = { on: randomUserId(), off: randomUserId(), cluster: randomUserId() };
const neverCached = randomUserId();

beforeAll(async () => {
  pg = await PrivatePostgres.start();
  cluster = await PrivateRedisCluster.start({ password: "grace" });
  inspect = cluster.client();
  token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
  const database = { url: pg.url, name: "postgres", drop: async () => {} };
  const env = { DB_STATEMENT_TIMEOUT_MS: "2000", PROFILE_CACHE_TTL_SECONDS: "1" };
  onLog = captureLog();
  on = await startTestService({
    label: "grace_on",
    database,
    env: { ...env, CACHE_GRACE_SECONDS: String(GRACE_SECONDS) },
    log: onLog.log,
  });
  off = await startTestService({ label: "grace_off", database, env });
  onCluster = await startTestService({
    label: "grace_cluster",
    database,
    env: {
      ...env,
      CACHE_GRACE_SECONDS: String(GRACE_SECONDS),
      REDIS_URL: cluster.seedList,
      REDIS_CLUSTER: "true",
      REDIS_TIMEOUT_MS: "500",
    },
  });

  const services = { on, off, cluster: onCluster };
  for (const id of [...expired, ...Object.values(written), neverCached]) {
    await on.grpc.unary("updateProfile", { userId: id, profile: { firstName: "old" } }, token);
  }
  // Cache every expired key, and the written one, on each service; then let their 1 s TTL run out.
  for (const [name, svc] of Object.entries(services)) {
    const own = written[name as keyof typeof written];
    for (const id of [...expired, own]) await svc.grpc.unary("getProfile", { userId: id }, token);
  }
  await new Promise((r) => setTimeout(r, 1500));
  // Written just before the stop: its DEL voids the grace copies of "old".
  for (const [name, svc] of Object.entries(services)) {
    await svc.grpc.unary(
      "updateProfile",
      {
        userId: written[name as keyof typeof written],
        profile: { firstName: "new" },
        updateMask: { paths: ["first_name"] },
      },
      token,
    );
  }
  await pg.stop();
}, 180_000);
afterAll(async () => {
  for (const svc of [on, off, onCluster]) await svc?.close();
  inspect?.disconnect();
  await cluster?.stop();
  await pg?.destroy();
});

/** A GetProfile over grpc-js that also returns the response headers. */
async function getWithHeaders(svc: TestService, userId: string) {
  const client = genericClient(ProfileService, `127.0.0.1:${svc.port}`);
  try {
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${token}`);
    return await new Promise<{ firstName: string | undefined; xCache: unknown }>((resolve, reject) => {
      let xCache: unknown;
      const call = (client.getProfile as (...args: unknown[]) => grpc.ClientUnaryCall).call(
        client,
        create(ProfileService.method.getProfile.input, { userId }),
        md,
        { deadline: Date.now() + 20_000 },
        (err: grpc.ServiceError | null, res: { profile?: { firstName: string } }) =>
          err ? reject(err) : resolve({ firstName: res.profile?.firstName, xCache }),
      );
      call.on("metadata", (headers: grpc.Metadata) => (xCache = headers.get("x-cache")[0]));
    });
  } finally {
    client.close();
  }
}

/** N reads of each expired key: how many were served stale (OK with x-cache: stale) and how many UNAVAILABLE. */
async function tally(svc: TestService) {
  const counts = { staleServed: 0, unavailable: 0, other: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    for (const id of expired) {
      try {
        const res = await getWithHeaders(svc, id);
        if (res.firstName === "old" && res.xCache === "stale") counts.staleServed++;
        else counts.other++;
      } catch (err) {
        if ((err as grpc.ServiceError).code === grpc.status.UNAVAILABLE) counts.unavailable++;
        else counts.other++;
      }
    }
  }
  return counts;
}

const staleServed = async (svc: TestService) =>
  (await svc.app.metrics.cacheStaleServed.get()).values.find((v) => v.labels.cache_type === "profile")?.value ?? 0;

describe("with PostgreSQL stopped", () => {
  it("grace on: serves a key expired within grace, marked x-cache: stale on grpc-js, Connect and HTTP/1.1, logged and counted", async () => {
    const before = await staleServed(on);
    const id = expired[0]!;
    expect(await getWithHeaders(on, id)).toEqual({ firstName: "old", xCache: "stale" });

    let connectHeader: string | null = null;
    const res = await on.connect.getProfile(
      { userId: id },
      { headers: { authorization: `Bearer ${token}` }, onHeader: (h) => (connectHeader = h.get("x-cache")) },
    );
    expect(res.profile?.firstName).toBe("old");
    expect(connectHeader).toBe("stale");

    const http1 = await fetch(`${on.baseUrl}/profile.v1.ProfileService/GetProfile`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ userId: id }),
    });
    expect(http1.status).toBe(200);
    expect(http1.headers.get("x-cache")).toBe("stale");
    expect(((await http1.json()) as { profile: { firstName: string } }).profile.firstName).toBe("old");

    expect(await staleServed(on)).toBe(before + 3);
    const rpcLines = onLog.lines.filter((l) => l.msg === "rpc" && l.method === "profile.v1.ProfileService/GetProfile");
    expect(rpcLines.at(-1)).toMatchObject({ code: "OK", cache: "stale" });
  });

  it("grace on: a key written just before the stop is never the old value", async () => {
    for (const [svc, userId] of [
      [on, written.on],
      [onCluster, written.cluster],
    ] as const) {
      for (let i = 0; i < 3; i++) {
        const got = await svc.grpc.unary("getProfile", { userId }, token).then(
          (r) => r.profile?.firstName,
          (err: grpc.ServiceError) => err.code,
        );
        expect(got).toBe(grpc.status.UNAVAILABLE);
      }
    }
  });

  it("a key never cached is UNAVAILABLE, grace on or off", async () => {
    for (const svc of [on, off, onCluster]) {
      expect(await codeOf(svc.grpc.unary("getProfile", { userId: neverCached }, token))).toBe(grpc.status.UNAVAILABLE);
    }
    await expect(
      on.connect.getProfile({ userId: neverCached }, { headers: { authorization: `Bearer ${token}` } }),
    ).rejects.toSatisfy((err) => err instanceof ConnectError && err.code === Code.Unavailable);
  });

  it("grace off (the default): the same expired keys are UNAVAILABLE", async () => {
    expect(await codeOf(off.grpc.unary("getProfile", { userId: expired[0] }, token))).toBe(grpc.status.UNAVAILABLE);
    expect(await staleServed(off)).toBe(0);
  });

  it("on a Redis Cluster: a grace read is served stale", async () => {
    expect(await getWithHeaders(onCluster, expired[1]!)).toEqual({ firstName: "old", xCache: "stale" });
    expect(await staleServed(onCluster)).toBe(1);
    // The grace copy went back into its own key, on whichever node holds it.
    await expect.poll(() => inspect.get(onCluster.keys.profile(expired[1]!))).toContain('"first_name":"old"');
  });

  it(`figures: ${ROUNDS} reads of each of ${EXPIRED} expired keys, grace on vs off`, async () => {
    const figures = { graceOn: await tally(on), graceOff: await tally(off), graceOnCluster: await tally(onCluster) };
    console.log(`stale reads during a PostgreSQL outage (${ROUNDS} x ${EXPIRED} reads): ${JSON.stringify(figures)}`);
    const reads = ROUNDS * EXPIRED;
    expect(figures.graceOn).toEqual({ staleServed: reads, unavailable: 0, other: 0 });
    expect(figures.graceOnCluster).toEqual({ staleServed: reads, unavailable: 0, other: 0 });
    expect(figures.graceOff).toEqual({ staleServed: 0, unavailable: reads, other: 0 });
  });
});
