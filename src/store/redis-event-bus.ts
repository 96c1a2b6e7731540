import type { Cluster, Redis } from "ioredis";
import type { EventBus } from "./event-bus.js";
import type { FailurePolicy } from "./failure-policy.js";
import { ClusterSubscription } from "./redis-cluster-subscription.js";
import { withTimeout } from "../lib/timeout.js";

export class RedisEventBus implements EventBus {
  private readonly subscriptions = new Set<() => void>();

  /**
   * `publisher` is the shared command connection. Each subscription opens a
   * connection of its own (a connection in subscribe mode can do nothing else).
   * `policy` is the cache's too: one connection, one verdict on its health.
   */
  constructor(
    private readonly publisher: Redis | Cluster,
    private readonly policy: FailurePolicy,
  ) {}

  async publish(channel: string, message: string): Promise<void> {
    await this.policy.run(() => this.publisher.publish(channel, message), false);
  }

  async subscribe(
    channels: readonly string[],
    onMessage: (channel: string, message: string) => void,
    onStatus?: (live: boolean) => void,
  ): Promise<() => Promise<void>> {
    const { subscribed, close } = this.publisher.isCluster
      ? this.subscribeOnCluster(this.publisher as Cluster, channels, onMessage, onStatus)
      : this.subscribeOnNode(this.publisher as Redis, channels, onMessage, onStatus);
    this.subscriptions.add(close);
    // Wait for SUBSCRIBE while Redis is up, so a publish right after this resolves is delivered;
    // while Redis is down, return at once and let it complete on connect.
    await withTimeout(subscribed, this.policy.options.timeoutMs * 20, () => undefined);
    return async () => {
      this.subscriptions.delete(close);
      close();
    };
  }

  async close(): Promise<void> {
    for (const close of this.subscriptions) close();
    this.subscriptions.clear();
  }

  private subscribeOnCluster(
    cluster: Cluster,
    channels: readonly string[],
    onMessage: (channel: string, message: string) => void,
    onStatus?: (live: boolean) => void,
  ) {
    const subscription = new ClusterSubscription(cluster, channels, onMessage, onStatus);
    return { subscribed: subscription.start(), close: () => subscription.close() };
  }

  // A single node, or the primary a Sentinel names: the duplicate is made with
  // the same options, so it follows a failover the way the command connection does.
  private subscribeOnNode(
    node: Redis,
    channels: readonly string[],
    onMessage: (channel: string, message: string) => void,
    onStatus?: (live: boolean) => void,
  ) {
    // Unlike the command connection, the subscriber queues while disconnected
    // and retries forever: SUBSCRIBE must survive Redis being down at startup,
    // and ioredis re-subscribes after every reconnect.
    const sub = node.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, enableAutoPipelining: false });
    let closed = false;
    sub.on("message", (channel: string | Buffer, message: string | Buffer) =>
      onMessage(String(channel), String(message)),
    );
    // Messages published while the connection was down are lost, so the owner
    // hears about the gap and can catch up (the watch hub reads the outbox).
    sub.on("close", () => {
      if (!closed) onStatus?.(false);
    });
    sub.on("ready", () => onStatus?.(true));
    sub.on("error", () => {});
    return {
      subscribed: sub.subscribe(...channels).catch(() => {}),
      close: () => {
        closed = true;
        sub.disconnect();
      },
    };
  }
}
