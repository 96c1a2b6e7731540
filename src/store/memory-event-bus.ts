// The embedded default's bus: an in-process EventEmitter with the semantics of
// RedisEventBus. One process is the whole deployment, so nothing is ever lost
// between publish and delivery and the status is live from the start.

import { EventEmitter } from "node:events";
import type { EventBus } from "./event-bus.js";

export class MemoryEventBus implements EventBus {
  private readonly emitter = new EventEmitter();
  private closed = false;

  constructor() {
    // Every watcher subscribes; the default limit of 10 would warn about a leak.
    this.emitter.setMaxListeners(0);
  }

  async publish(channel: string, message: string): Promise<void> {
    if (this.closed) throw new Error("event bus closed");
    // Delivered on a later tick, as from Redis: a subscriber never runs inside the publisher's call.
    setImmediate(() => this.emitter.emit(channel, channel, message));
  }

  async subscribe(
    channels: readonly string[],
    onMessage: (channel: string, message: string) => void,
    onStatus?: (live: boolean) => void,
  ): Promise<() => Promise<void>> {
    const unique = [...new Set(channels)];
    // A listener of its own, so unsubscribing never detaches another subscription's callback.
    const listener = (channel: string, message: string) => onMessage(channel, message);
    for (const channel of unique) this.emitter.on(channel, listener);
    // As with Redis, whose subscriber connection reports ready before subscribe resolves.
    onStatus?.(true);
    return async () => {
      for (const channel of unique) this.emitter.off(channel, listener);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.emitter.removeAllListeners();
  }
}
