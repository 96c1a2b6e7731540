// The client's watch() against two replicas of the real binary, under a
// writer that keeps writing: SIGKILL and restart of the replica the watch is
// on (again and again, with the list of both addresses), SIGTERM of it, a
// stream cut by a crashed replica behind haproxy (INTERNAL), and connections
// that break (reset) or go silent (frozen). After each, what the consumer saw
// is compared with profile_events read straight from PostgreSQL: every
// committed event exactly once, in commit order.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProfileClient, status } from "../client/src/index.js";
import { WatchConsumer } from "./support/client-consumer.js";
import { addressOf, ClientReplicas } from "./support/client-replicas.js";
import { Haproxy } from "./support/haproxy.js";
import { committedEventIds, replicaWithWatcher } from "./support/replicas.js";
import { randomUserId } from "./support/service.js";
import { TcpProxy } from "./support/tcp-proxy.js";

const replicas = ClientReplicas.use("client_failover", {
  WATCH_PROGRESS_INTERVAL_SECONDS: "1",
  SHUTDOWN_GRACE_SECONDS: "3",
  // The smallest queue there is, so a consumer that stops reading is cut off soon.
  WATCH_QUEUE_SIZE: "200",
});

async function watchUser(user: string, addresses: string[], idleTimeoutMs?: number): Promise<WatchConsumer> {
  const consumer = new WatchConsumer(await replicas.clientFor(user, addresses), { userIds: [user] }, { idleTimeoutMs });
  replicas.consumers.push(consumer);
  await consumer.until(() => consumer.bookmarks > 0, 15_000, "the first bookmark");
  return consumer;
}

/** Writes to `user` every few ms until stopped, through its own client (which retries UNAVAILABLE). */
class Writer {
  acked = 0;
  readonly failures: string[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(client: ProfileClient) {
    this.loop = (async () => {
      for (let n = 0; this.running; n++) {
        try {
          await client.updateProfile({ profile: { bio: `w${n}` } });
          this.acked++;
        } catch (err) {
          this.failures.push(`${status[(err as { code: number }).code]}: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  async until(n: number, timeoutMs: number): Promise<void> {
    const target = this.acked + n;
    const deadline = Date.now() + timeoutMs;
    while (this.acked < target) {
      if (Date.now() > deadline) throw new Error(`writer stalled at ${this.acked}: ${this.failures.join("; ")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

interface Tally {
  committed: number;
  delivered: number;
  lost: number;
  duplicates: number;
  outOfOrder: boolean;
}

/** Waits for the consumer to have every committed event, then a little longer (a duplicate would come late). */
async function tally(consumer: WatchConsumer, user: string): Promise<Tally> {
  const committed = await committedEventIds(replicas.db, user);
  await consumer
    .until(() => consumer.events.length >= committed.length, 20_000, "every committed event")
    .catch(() => undefined);
  const bookmarks = consumer.bookmarks;
  await consumer.until(() => consumer.bookmarks >= bookmarks + 2, 10_000, "two more bookmarks");
  const delivered = consumer.events.map((e) => e.eventId);
  const seen = new Set(delivered);
  return {
    committed: committed.length,
    delivered: delivered.length,
    lost: committed.filter((id) => !seen.has(id)).length,
    duplicates: delivered.length - seen.size,
    outOfOrder: JSON.stringify(delivered) !== JSON.stringify(committed),
  };
}

function ends(consumer: WatchConsumer): string[] {
  return consumer.retries.map((r) => `${r.code === undefined ? "none" : status[r.code]}: ${r.details}`);
}

describe("replicas killed under a watching client (two addresses)", () => {
  it("SIGKILL and restart of its replica, four times, then a SIGTERM: every committed event once, in order", async () => {
    const user = randomUserId();
    const both = replicas.set.replicas.map(addressOf);
    const consumer = await watchUser(user, both);
    const writer = new Writer(await replicas.clientFor(user, [...both].reverse()));
    const victims: string[] = [];
    try {
      await writer.until(20, 15_000);
      for (let round = 0; round < 5; round++) {
        const signal = round < 4 ? "SIGKILL" : "SIGTERM";
        const victim = await replicaWithWatcher(replicas.set);
        const before = consumer.events.length;
        victims.push(`${victim.name} ${signal}`);
        victim.kill(signal);
        const code = await victim.exited();
        if (signal === "SIGTERM") expect(code).toBe(0);
        // The watch goes on on the other replica while this one is down.
        await writer.until(20, 15_000);
        await consumer.until(() => consumer.events.length >= before + 20, 15_000, "events on the other replica");
        await victim.start();
      }
      await writer.until(20, 15_000);
    } finally {
      await writer.stop();
    }
    const result = await tally(consumer, user);
    console.log(
      `watch client across ${victims.join(", ")}: ${JSON.stringify(result)}; ` +
        `${writer.acked} writes acknowledged, ${writer.failures.length} failed ${JSON.stringify(writer.failures)}; ` +
        `stream ends ${JSON.stringify(ends(consumer))}`,
    );
    expect(result).toMatchObject({ lost: 0, duplicates: 0, outOfOrder: false });
    expect(result.delivered).toBe(result.committed);
    expect(consumer.retries.length).toBeGreaterThanOrEqual(5);
    // The SIGTERMed replica said goodbye properly: its final bookmark, then UNAVAILABLE.
    expect(consumer.retries.at(-1)!.code).toBe(status.UNAVAILABLE);
  }, 180_000);
});

describe("stopping", () => {
  async function watchersConnected(): Promise<number> {
    let sum = 0;
    for (const r of replicas.set.replicas) sum += await r.metric("watchers_connected");
    return sum;
  }

  it("an aborted signal ends the iterator with its reason, and break ends it too; either closes the stream", async () => {
    const user = randomUserId();
    const consumer = await watchUser(user, replicas.set.replicas.map(addressOf));
    await expect.poll(watchersConnected, { timeout: 5000 }).toBe(1);
    await consumer.stop();
    expect((consumer.error as Error).name).toBe("AbortError");
    await expect.poll(watchersConnected, { timeout: 5000 }).toBe(0);

    const client = await replicas.clientFor(user, replicas.set.replicas.map(addressOf));
    const writer = await replicas.clientFor(user, replicas.set.replicas.map(addressOf));
    const seen: string[] = [];
    for await (const item of client.watch({ userIds: [user] }, { bookmarks: true })) {
      if (item.type === "bookmark" && seen.length === 0) await writer.updateProfile({ profile: { bio: "then break" } });
      if (item.type === "event") {
        seen.push(item.event.eventId);
        break;
      }
    }
    expect(seen).toHaveLength(1);
    await expect.poll(watchersConnected, { timeout: 5000 }).toBe(0);
  });
});

describe("a consumer that falls behind", () => {
  it("is cut off by the server (RESOURCE_EXHAUSTED), resumes from its last token, and loses nothing", async () => {
    const user = randomUserId();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const client = await replicas.clientFor(user, replicas.set.replicas.map(addressOf));
    // It takes the first event, then stops reading until the writes are done.
    const consumer = new WatchConsumer(client, { userIds: [user] }, {}, async (item) => {
      if (item.type === "event") await gate;
    });
    replicas.consumers.push(consumer);
    await consumer.until(() => consumer.bookmarks > 0, 15_000, "the first bookmark");
    const writer = await replicas.clientFor(user, replicas.set.replicas.map(addressOf));
    const WRITES = 1500;
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < WRITES) await writer.updateProfile({ profile: { bio: `w${next++}` } });
      }),
    );
    const stalledAt = consumer.events.length;
    release();
    const result = await tally(consumer, user);
    console.log(
      `slow consumer: ${WRITES} writes while it read ${stalledAt} event(s): ${JSON.stringify(result)}; ends ${JSON.stringify(ends(consumer))}`,
    );
    expect(stalledAt).toBe(1);
    expect(consumer.retries.map((r) => r.code)).toContain(status.RESOURCE_EXHAUSTED);
    expect(result).toMatchObject({ committed: WRITES, lost: 0, duplicates: 0, outOfOrder: false });
  }, 120_000);
});

describe("behind haproxy (one address)", () => {
  let haproxy: Haproxy;
  beforeAll(async () => {
    haproxy = await Haproxy.start(replicas.set.replicas.map((r) => ({ name: r.name, port: r.port })));
    await haproxy.waitFor(
      "UP",
      replicas.set.replicas.map((r) => r.name),
    );
  }, 30_000);
  afterAll(async () => {
    await haproxy?.stop();
  });

  it("resumes after the INTERNAL of a stream cut by a SIGKILLed replica, and loses nothing", async () => {
    const user = randomUserId();
    const consumer = await watchUser(user, [haproxy.address]);
    const writer = new Writer(await replicas.clientFor(user, [haproxy.address]));
    try {
      await writer.until(10, 15_000);
      const victim = await replicaWithWatcher(replicas.set);
      const before = consumer.events.length;
      victim.kill("SIGKILL");
      await victim.exited();
      await consumer.until(() => consumer.retries.length > 0, 15_000, "the stream's end");
      await writer.until(10, 15_000);
      await consumer.until(() => consumer.events.length >= before + 10, 15_000, "events after the cut");
      await victim.start();
      await haproxy.waitFor("UP", [victim.name]);
    } finally {
      await writer.stop();
    }
    const result = await tally(consumer, user);
    console.log(
      `watch client through haproxy across a SIGKILL: ${JSON.stringify(result)}; ends ${JSON.stringify(ends(consumer))}`,
    );
    expect(consumer.retries[0]!.code).toBe(status.INTERNAL);
    expect(consumer.retries[0]!.details).toMatch(/^Received RST_STREAM with code 0/);
    expect(result).toMatchObject({ lost: 0, duplicates: 0, outOfOrder: false });
  }, 90_000);
});

describe("broken connections", () => {
  const proxies: TcpProxy[] = [];
  afterAll(async () => {
    for (const p of proxies) await p.close();
  });

  it("a frozen connection is given up after the idle timeout, a reset one at once; the watch moves on and loses nothing", async () => {
    const [a, b] = await Promise.all(replicas.set.replicas.map((r) => TcpProxy.start(r.port)));
    proxies.push(a!, b!);
    const user = randomUserId();
    // The service sends a bookmark after 1 s of silence, so 3 s without a byte means the connection is gone.
    const consumer = await watchUser(user, [a!.address, b!.address], 3000);
    const writer = new Writer(await replicas.clientFor(user, replicas.set.replicas.map(addressOf)));
    try {
      await writer.until(10, 15_000);
      let before = consumer.events.length;
      a!.freeze();
      await consumer.until(() => consumer.retries.length >= 1, 15_000, "the idle timeout");
      await consumer.until(() => consumer.events.length >= before + 10, 15_000, "events through the other address");
      expect(consumer.retries[0]!.code).toBeUndefined();
      expect(consumer.retries[0]!.details).toMatch(/sent nothing for 3000 ms/);
      // Given up no sooner than the idle timeout after the last message it had.
      expect(consumer.silences[0]).toBeGreaterThanOrEqual(2900);

      before = consumer.events.length;
      b!.cut();
      await consumer.until(() => consumer.retries.length >= 2, 15_000, "the reset");
      await consumer.until(
        () => consumer.events.length >= before + 10,
        15_000,
        "events through the first address again",
      );
      expect(consumer.retries[1]!.code).toBe(status.UNAVAILABLE);
      expect(consumer.retries[1]!.address).toBe(b!.address);
    } finally {
      await writer.stop();
    }
    const result = await tally(consumer, user);
    console.log(
      `watch client across a frozen and a reset connection: ${JSON.stringify(result)}; ends ${JSON.stringify(ends(consumer))}`,
    );
    expect(result).toMatchObject({ lost: 0, duplicates: 0, outOfOrder: false });
  }, 90_000);
});
