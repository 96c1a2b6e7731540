// One suite, two buses: the in-process bus must behave as Redis pub/sub does
// for everything the service relies on.

import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventBus } from "../src/store/event-bus.js";
import { MemoryEventBus } from "../src/store/memory-event-bus.js";
import { createRedisClient, waitUntilReady } from "../src/store/redis-client.js";
import { RedisEventBus } from "../src/store/redis-event-bus.js";
import { testRedisUrl, uniqueKeyPrefix } from "./support/servers.js";

let redis: Redis | Cluster;
beforeAll(async () => {
  redis = createRedisClient({ url: testRedisUrl, cluster: false });
  expect(await waitUntilReady(redis, 5000)).toBe(true);
});
afterAll(() => redis?.disconnect());

const implementations: [string, () => EventBus][] = [
  ["RedisEventBus", () => new RedisEventBus(redis, 1000)],
  ["MemoryEventBus", () => new MemoryEventBus()],
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

describe.concurrent.each(implementations)("%s", (_name, make) => {
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
    expect(inbox.messages).toEqual([
      [a, "1"],
      [b, "2"],
      [a, "3"],
    ]);
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
