import type { Cluster, Redis } from "ioredis";
import type { EventBus } from "./event-bus.js";
import { waitUntilReady } from "./redis-client.js";

export class RedisEventBus implements EventBus {
  private subscriber: Redis | Cluster | undefined;

  /**
   * `publisher` is the shared command connection. A subscriber connection is
   * opened on first subscribe (a connection in subscribe mode can do nothing else).
   */
  constructor(
    private readonly publisher: Redis | Cluster,
    private readonly timeoutMs: number,
    private readonly connectTimeoutMs = 2000,
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
    const sub = this.publisher.duplicate();
    this.subscriber = sub;
    const handler = (channel: string | Buffer, message: string | Buffer) => onMessage(String(channel), String(message));
    sub.on("message", handler);
    // ioredis re-subscribes after a reconnect; messages published while it was down are lost,
    // so the owner hears about the gap and can catch up from the outbox.
    sub.on("close", () => onStatus?.(false));
    sub.on("ready", () => onStatus?.(true));
    sub.on("error", () => {});
    // The duplicate inherits enableOfflineQueue: false, so SUBSCRIBE sent before
    // it connects would fail at once.
    if (!(await waitUntilReady(sub, this.connectTimeoutMs))) {
      sub.disconnect();
      throw new Error("redis subscriber connection did not become ready");
    }
    await sub.subscribe(...channels);
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
