// One suite, three buses: Redis pub/sub on a single node and on a real Redis
// Cluster (3 masters, 3 replicas, with a password), where the publisher and
// the subscriber are on different nodes; and the in-process bus, which must
// behave as Redis pub/sub does for everything the service relies on.
//
// One difference is part of the contract: a cluster does not keep the order of
// messages, not even on one channel. ioredis sends each PUBLISH to any
// master, and each reaches the subscriber's node over its own cluster link.

import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventBus } from "../src/store/event-bus.js";
import { FailurePolicy } from "../src/store/failure-policy.js";
import { MemoryEventBus } from "../src/store/memory-event-bus.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { RedisEventBus } from "../src/store/redis-event-bus.js";
import { PrivateRedisCluster } from "./support/private-redis-cluster.js";
import { testRedisUrl, uniqueKeyPrefix } from "./support/servers.js";

let redis: Redis | Cluster;
let cluster: PrivateRedisCluster;
let onCluster: Cluster;
beforeAll(async () => {
  redis = createRedisClient({ url: testRedisUrl, cluster: false });
  cluster = await PrivateRedisCluster.start({ password: "contract" });
  onCluster = createRedisClient({ url: cluster.seedList, cluster: true }) as Cluster;
  expect(await waitUntilReady(redis, 5000)).toBe(true);
  expect(await waitUntilReady(onCluster, 5000)).toBe(true);
});
afterAll(async () => {
  redis?.disconnect();
  onCluster?.disconnect();
  await cluster?.stop();
});

/** [name, factory, whether messages arrive in publish order] */
const implementations: [string, () => EventBus, boolean][] = [
  ["RedisEventBus", () => new RedisEventBus(redis, new FailurePolicy({ timeoutMs: 1000 })), true],
  ["RedisEventBus on a cluster", () => new RedisEventBus(onCluster, new FailurePolicy({ timeoutMs: 1000 })), false],
  ["MemoryEventBus", () => new MemoryEventBus(), true],
];

class Inbox {
  readonly messages: [string, string][] = [];
  readonly statuses: boolean[] = [];
  readonly onMessage = (channel: string, message: string) => void this.messages.push([channel, message]);
  readonly onStatus = (live: boolean) => void this.statuses.push(live);
  on(channel: string): string[] {
    return this.messages.filter(([c]) => c === channel).map(([, m]) => m);
  }
}

describe.concurrent.each(implementations)("%s", (_name, make, ordered) => {
  let bus: EventBus;
  let prefix: string;
  let n = 0;
  const channel = () => `${prefix}ch${++n}`;
  beforeAll(() => {
    bus = make();
    prefix = uniqueKeyPrefix("bus_contract");
  });
  afterAll(() => bus?.close());

  it("delivers what is published on the subscribed channels, in order, and nothing else", async ({ expect }) => {
    const [a, b, other] = [channel(), channel(), channel()];
    const inbox = new Inbox();
    const unsubscribe = await bus.subscribe([a, b], inbox.onMessage, inbox.onStatus);
    await bus.publish(a, "1");
    await bus.publish(other, "x");
    await bus.publish(b, "2");
    await bus.publish(a, "3");
    await expect.poll(() => inbox.messages.length).toBe(3);
    if (ordered) {
      expect(inbox.messages).toEqual([
        [a, "1"],
        [b, "2"],
        [a, "3"],
      ]);
    } else {
      expect([inbox.on(a), inbox.on(b), inbox.on(other)]).toEqual([["1", "3"], ["2"], []]);
    }
    await unsubscribe();
  });

  it("delivers every message of a burst on two channels, in publish order where the bus keeps it", async ({
    expect,
  }) => {
    const [a, b] = [channel(), channel()];
    const inbox = new Inbox();
    const unsubscribe = await bus.subscribe([a, b], inbox.onMessage);
    const sent = Array.from({ length: 40 }, (_, i) => String(i));
    for (const m of sent) await bus.publish(Number(m) % 2 === 0 ? a : b, m);
    await expect.poll(() => inbox.messages.length).toBe(sent.length);
    const evens = sent.filter((m) => Number(m) % 2 === 0);
    const odds = sent.filter((m) => Number(m) % 2 === 1);
    const sorted = (ms: string[]) => [...ms].sort((x, y) => Number(x) - Number(y));
    expect(ordered ? [inbox.on(a), inbox.on(b)] : [sorted(inbox.on(a)), sorted(inbox.on(b))]).toEqual([evens, odds]);
    await unsubscribe();
  });

  it("reports live once subscribed", async ({ expect }) => {
    const inbox = new Inbox();
    const unsubscribe = await bus.subscribe([channel()], inbox.onMessage, inbox.onStatus);
    await expect.poll(() => inbox.statuses).toContain(true);
    expect(inbox.statuses).not.toContain(false);
    await unsubscribe();
  });

  it("fans out to every subscriber", async ({ expect }) => {
    const c = channel();
    const [one, two] = [new Inbox(), new Inbox()];
    const unsubscribes = [await bus.subscribe([c], one.onMessage), await bus.subscribe([c], two.onMessage)];
    await bus.publish(c, "hello");
    await expect.poll(() => [one.on(c), two.on(c)]).toEqual([["hello"], ["hello"]]);
    await Promise.all(unsubscribes.map((u) => u()));
  });

  it("stops delivering after unsubscribe, without touching other subscriptions", async ({ expect }) => {
    const c = channel();
    const [gone, staying] = [new Inbox(), new Inbox()];
    const unsubscribe = await bus.subscribe([c], gone.onMessage);
    const unsubscribeStaying = await bus.subscribe([c], staying.onMessage);
    await bus.publish(c, "before");
    await expect.poll(() => gone.on(c)).toEqual(["before"]);

    await unsubscribe();
    await bus.publish(c, "after");
    // The staying subscriber received "after", so it was delivered; the other must not have it.
    await expect.poll(() => staying.on(c)).toEqual(["before", "after"]);
    expect(gone.on(c)).toEqual(["before"]);
    await unsubscribeStaying();
  });

  it("delivers a message published before unsubscribe to one callback subscribed twice, twice", async ({ expect }) => {
    // The same function subscribed twice is two subscriptions; ending one leaves the other.
    const c = channel();
    const inbox = new Inbox();
    const first = await bus.subscribe([c], inbox.onMessage);
    const second = await bus.subscribe([c], inbox.onMessage);
    await bus.publish(c, "both");
    await expect.poll(() => inbox.on(c)).toEqual(["both", "both"]);
    await first();
    await bus.publish(c, "one");
    await expect.poll(() => inbox.on(c)).toEqual(["both", "both", "one"]);
    await second();
  });
});
