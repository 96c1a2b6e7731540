import type { Cluster, Redis } from "ioredis";
import type { EventBus } from "./event-bus.js";

export class RedisEventBus implements EventBus {
  private subscriber: Redis | Cluster | undefined;

  /**
   * `publisher` is the shared command connection. A subscriber connection is
   * opened on first subscribe (a connection in subscribe mode can do nothing else).
   */
  constructor(
    private readonly publisher: Redis | Cluster,
    private readonly timeoutMs: number,
  ) {}

  async publish(channel: string, message: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.publisher.publish(channel, message),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("redis publish timed out")), this.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async subscribe(
    channels: readonly string[],
    onMessage: (channel: string, message: string) => void,
    onStatus?: (live: boolean) => void,
  ): Promise<() => Promise<void>> {
    // Unlike the command connection, the subscriber queues while disconnected
    // and retries forever: SUBSCRIBE must survive Redis being down at startup,
    // and ioredis re-subscribes after every reconnect.
    const options = { enableOfflineQueue: true, maxRetriesPerRequest: null };
    const sub = this.publisher.isCluster
      ? (this.publisher as Cluster).duplicate(undefined, { enableOfflineQueue: true, redisOptions: { maxRetriesPerRequest: null } })
      : (this.publisher as Redis).duplicate(options);
    this.subscriber = sub;
    const handler = (channel: string | Buffer, message: string | Buffer) => onMessage(String(channel), String(message));
    sub.on("message", handler);
    // Messages published while the connection was down are lost, so the owner
    // hears about the gap and can catch up (the watch hub reads the outbox).
    sub.on("close", () => onStatus?.(false));
    sub.on("ready", () => onStatus?.(true));
    sub.on("error", () => {});
    // Wait for SUBSCRIBE while Redis is up, so a publish right after this resolves is delivered;
    // while Redis is down, return at once and let it complete on connect.
    const subscribed = sub.subscribe(...channels).catch(() => {});
    await Promise.race([subscribed, new Promise((resolve) => setTimeout(resolve, this.timeoutMs * 20).unref())]);
    return async () => {
      sub.off("message", handler);
      sub.disconnect();
      if (this.subscriber === sub) this.subscriber = undefined;
    };
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
  }
}
