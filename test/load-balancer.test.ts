// Two replicas of the real binary behind a real haproxy, run from the
// checked-in example (deploy/haproxy/haproxy.cfg) with test ports: readiness
// from Health/Check, cross-replica reads of acknowledged writes, a watch that
// survives its replica's SIGTERM, and what a SIGKILLed replica costs clients.

import { readFileSync } from "node:fs";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { grpc } from "./support/grpc-client.js";
import { Haproxy, HAPROXY_EXAMPLE, type HaproxyCall } from "./support/haproxy.js";
import { committedEventIds, replicaWithWatcher, startReplicas, type ReplicaSet } from "./support/replicas.js";
import { ResumingWatch } from "./support/resuming-watch.js";
import { adminDatabaseUrl } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { TaggedClient } from "./support/tagged-client.js";
import { mintToken } from "./support/tokens.js";

let set: ReplicaSet;
let haproxy: Haproxy;
let db: pg.Pool;
const clients: TaggedClient[] = [];
const watchers: ResumingWatch[] = [];

beforeAll(async () => {
  set = await startReplicas("load_balancer", 2, { WATCH_PROGRESS_INTERVAL_SECONDS: "1", SHUTDOWN_GRACE_SECONDS: "5" });
  haproxy = await Haproxy.start(set.replicas.map((r) => ({ name: r.name, port: r.port })));
  db = new pg.Pool({ connectionString: set.database.url, max: 2 });
  await haproxy.waitFor("UP", names());
}, 60_000);

// A test that failed half-way must not leave the next one a replica short.
afterEach(async () => {
  for (const r of set.replicas) if (r.service?.exitCode !== undefined) await r.start();
  await haproxy.waitFor("UP", names());
}, 30_000);

afterAll(async () => {
  for (const w of watchers) w.stop();
  for (const c of clients) c.close();
  await haproxy?.stop();
  await db?.end();
  await set?.close();
});

function names(): string[] {
  return set.replicas.map((r) => r.name);
}

/** A client of the balancer, acting as `user` (its own data only). */
async function balancerClient(user: string): Promise<TaggedClient> {
  const client = new TaggedClient(haproxy.address, await mintToken(user));
  clients.push(client);
  return client;
}

/** A watch of `user`'s events through the balancer, resumed as the README says. */
async function watchThroughBalancer(user: string, label: string): Promise<ResumingWatch> {
  const watcher = new ResumingWatch(await balancerClient(user), [user], label);
  watchers.push(watcher);
  await watcher.until(() => watcher.bookmarks > 0, 10_000, "the first bookmark");
  return watcher;
}

function codeName(code: number): string {
  return grpc.status[code] ?? String(code);
}

describe("the example config", () => {
  it("balances per request and retries only calls that never reached a replica", () => {
    const example = readFileSync(HAPROXY_EXAMPLE, "utf8");
    const directives = example.split("\n").map((l) => l.replace(/#.*/, "").trim());
    expect(directives).toContain("balance roundrobin");
    expect(directives).toContain("retry-on conn-failure");
    expect(directives.some((d) => /^bind .* proto h2$/.test(d))).toBe(true);
    expect(directives.some((d) => /^default-server proto h2 check\b/.test(d))).toBe(true);
  });
});

describe("readiness", () => {
  it("follows Health/Check, not the open port: NOT_SERVING takes both replicas out, SERVING puts them back", async () => {
    const admin = new pg.Client({ connectionString: adminDatabaseUrl });
    await admin.connect();
    const name = set.database.name;
    try {
      // PostgreSQL refuses this database: the probe fails and Health/Check says NOT_SERVING.
      await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS false`);
      await db.end();
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [name]);
      await haproxy.waitFor("DOWN", names(), 20_000);
      // Both ports still accept connections: the check read the status.
      for (const r of set.replicas) expect(await r.metric("process_start_time_seconds")).toBeGreaterThan(0);
    } finally {
      await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
      await admin.end();
      db = new pg.Pool({ connectionString: set.database.url, max: 2 });
    }
    await haproxy.waitFor("UP", names(), 20_000);
  }, 60_000);
});

describe("a write through one replica, read through the other", () => {
  it("is read back 200 times with no stale read", async () => {
    const user = randomUserId();
    const client = await balancerClient(user);
    await client.unary("updateProfile", "rw-init", { profile: { firstName: "A", bio: "v-init" } });
    const stale: string[] = [];
    for (let i = 0; i < 200; i++) {
      // Fill the cache with the current value, write, then read again.
      await client.unary("getProfile", `rw-${i}-before`, {});
      await client.unary("updateProfile", `rw-${i}-write`, {
        profile: { bio: `v${i}` },
        updateMask: { paths: ["bio"] },
      });
      const after = await client.unary("getProfile", `rw-${i}-after`, {});
      if (after.profile?.bio !== `v${i}`) stale.push(`${i}: ${after.profile?.bio}`);
    }
    // haproxy's log says where each call went: every write and its read-back on different replicas.
    const servers: { write: string; read: string }[] = [];
    for (let i = 0; i < 200; i++) {
      servers.push({
        write: (await haproxy.call(`rw-${i}-write`)).server,
        read: (await haproxy.call(`rw-${i}-after`)).server,
      });
    }
    const sameReplica = servers.filter((s) => s.write === s.read).length;
    const writesOn = (name: string) => servers.filter((s) => s.write === name).length;
    console.log(
      `cross-replica read-back: 200 pairs, ${stale.length} stale, ${sameReplica} on one replica, ` +
        `writes on ${names()
          .map((n) => `${n}: ${writesOn(n)}`)
          .join(", ")}`,
    );
    expect(sameReplica).toBe(0);
    for (const n of names()) expect(writesOn(n)).toBeGreaterThanOrEqual(50);
    expect(stale).toEqual([]);
  }, 60_000);
});

describe("a watch through the balancer", () => {
  it("survives the SIGTERM of its replica: every committed event once, in order", async () => {
    const user = randomUserId();
    const watcher = await watchThroughBalancer(user, "watch-term");
    const writer = await balancerClient(user);
    let writing = true;
    let acked = 0;
    let ackedDuringRestart = 0;
    const writeFailures: string[] = [];
    const writes = (async () => {
      for (let n = 0; writing; n++) {
        try {
          await writer.unary("updateProfile", `watch-term-w${n}`, { profile: { bio: `w${n}` } });
          acked++;
        } catch (err) {
          writeFailures.push(`${codeName((err as grpc.ServiceError).code)}: ${(err as grpc.ServiceError).details}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      await watcher.until(() => watcher.events.length >= 10, 10_000, "ten events");
      const victim = await replicaWithWatcher(set);
      victim.kill("SIGTERM");
      const ackedAtSignal = acked;
      expect(await victim.exited()).toBe(0);
      await victim.start();
      await haproxy.waitFor("UP", names());
      const ackedAfterRestart = acked;
      ackedDuringRestart = ackedAfterRestart - ackedAtSignal;
      await watcher.until(() => acked >= ackedAfterRestart + 20, 10_000, "writes after the restart");
    } finally {
      writing = false;
      await writes;
    }
    const committed = await committedEventIds(db, user);
    await watcher.until(() => watcher.events.length >= committed.length, 10_000, "every committed event");
    watcher.stop();
    const streams = await Promise.all(watcher.callIds.map((id) => haproxy.call(id)));
    console.log(
      `watch across SIGTERM: ${committed.length} committed, ${watcher.events.length} delivered, ` +
        `${acked} writes acknowledged (${ackedDuringRestart} between the SIGTERM and the restarted replica's return), ${writeFailures.length} failed ${JSON.stringify(writeFailures)}; ` +
        `streams ${JSON.stringify(streams.map((s) => s.server))}, ends ${JSON.stringify(watcher.ends.map((e) => `${codeName(e.code)}: ${e.details}`))}`,
    );
    expect(watcher.events.map((e) => e.eventId)).toEqual(committed);
    expect(ackedDuringRestart).toBeGreaterThan(0);
    expect(watcher.ends.length).toBeGreaterThanOrEqual(1);
    // The replica said goodbye properly: UNAVAILABLE after its final bookmark.
    expect(watcher.ends.every((e) => e.code === grpc.status.UNAVAILABLE)).toBe(true);
  }, 60_000);
});

describe("a SIGKILLed replica", () => {
  it("fails no call that haproxy could have retried", async () => {
    const user = randomUserId();
    const client = await balancerClient(user);
    await client.unary("updateProfile", "kill-init", { profile: { firstName: "K" } });
    let running = true;
    const failed: { id: string; code: grpc.status; details: string }[] = [];
    let calls = 0;
    const loop = async (worker: number) => {
      for (let n = 0; running; n++) {
        const id = `kill-${worker}-${n}`;
        calls++;
        try {
          if (n % 4 === 0) {
            await client.unary("updateProfile", id, { profile: { bio: id }, updateMask: { paths: ["bio"] } });
          } else {
            await client.unary("getProfile", id, {});
          }
        } catch (err) {
          failed.push({ id, code: (err as grpc.ServiceError).code, details: (err as grpc.ServiceError).details });
        }
      }
    };
    const workers = [0, 1, 2, 3].map(loop);
    await new Promise((r) => setTimeout(r, 1000));
    const victim = set.replicas[0]!;
    victim.kill("SIGKILL");
    const killedAt = calls;
    await haproxy.waitFor("DOWN", [victim.name]);
    await new Promise((r) => setTimeout(r, 1000));
    running = false;
    await Promise.all(workers);
    const logged = await Promise.all(
      failed.map(async (f) => ({ ...f, log: await haproxy.call(f.id).catch(() => undefined) })),
    );
    // In flight: the replica had the call and died before answering it. Either haproxy logged a
    // server abort (headers or data phase), or it reset the client's stream with REFUSED_STREAM,
    // which it does, without a log line, when the replica's connection drops before any response
    // header (grpc-js then retries once by itself, and reports "Stream refused by server").
    const inFlight = logged.filter(
      (f) =>
        (f.log?.term[0] === "S" && "HD".includes(f.log.term[1]!)) ||
        (f.log === undefined && f.code === grpc.status.UNAVAILABLE && f.details === "Stream refused by server"),
    );
    // Connection-level: the call never reached a replica. Either haproxy gave up connecting
    // (or waiting for a server: phase C or Q), or the client never got the call to haproxy.
    const connectionLevel = logged.filter(
      (f) => !inFlight.includes(f) && (f.log === undefined || "CQ".includes(f.log.term[1]!)),
    );
    const other = logged.filter((f) => !connectionLevel.includes(f) && !inFlight.includes(f));
    const retried = haproxy.calls.filter((c) => c.call.startsWith("kill-") && c.retries !== "0");
    console.log(
      `SIGKILL under load: ${calls} calls (${killedAt} before the kill), ${failed.length} failed: ` +
        `${connectionLevel.length} connection-level, ${inFlight.length} in flight on the killed replica ` +
        `${JSON.stringify(inFlight.map((f) => `${codeName(f.code)} "${f.details}" (haproxy ${f.log!.status} ${f.log!.term})`))}, ` +
        `${other.length} other; ${retried.length} calls retried by haproxy on another replica`,
    );
    expect(connectionLevel).toEqual([]);
    expect(other).toEqual([]);
    // The kill did hit calls on their way to the dead replica, and haproxy moved them.
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.every((c) => c.retries.startsWith("+") && c.server !== victim.name)).toBe(true);
  }, 60_000);

  it("cuts a watch stream on it: the client sees INTERNAL, and resuming through the balancer loses nothing", async () => {
    const user = randomUserId();
    const watcher = await watchThroughBalancer(user, "watch-kill");
    const writer = await balancerClient(user);
    for (let n = 0; n < 5; n++) await writer.unary("updateProfile", `watch-kill-a${n}`, { profile: { bio: `a${n}` } });
    await watcher.until(() => watcher.events.length >= 5, 10_000, "five events");
    const victim = await replicaWithWatcher(set);
    victim.kill("SIGKILL");
    await watcher.until(() => watcher.ends.length >= 1, 10_000, "the stream's end");
    for (let n = 0; n < 5; n++) await writer.unary("updateProfile", `watch-kill-b${n}`, { profile: { bio: `b${n}` } });
    const committed = await committedEventIds(db, user);
    await watcher.until(() => watcher.events.length >= committed.length, 10_000, "every committed event");
    watcher.stop();
    const end = watcher.ends[0]!;
    const log: HaproxyCall = await haproxy.call(end.callId);
    console.log(
      `watch on a SIGKILLed replica: ${codeName(end.code)} "${end.details}"; haproxy ${log.status} ${log.term}`,
    );
    expect(watcher.events.map((e) => e.eventId)).toEqual(committed);
    // haproxy ends the client's stream cleanly (END_STREAM, no trailers) when its replica's
    // connection drops, so grpc-js finds no grpc-status: INTERNAL, not UNAVAILABLE.
    expect(codeName(end.code)).toBe("INTERNAL");
    expect(end.details).toMatch(/^Received RST_STREAM with code 0/);
    expect(log.term).toBe("SD");
  }, 60_000);
});
