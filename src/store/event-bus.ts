// The seam for pub/sub: Redis PUBLISH/SUBSCRIBE in production, an in-process
// emitter in the embedded default.

export interface EventBus {
  /** Publishes one message; resolves once the bus accepted it. */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Calls `onMessage` for every message on `channels` until the returned
   * function is called. `onStatus` reports when delivery may have had a gap
   * (the subscriber connection dropped) and when it is live again.
   */
  subscribe(
    channels: readonly string[],
    onMessage: (channel: string, message: string) => void,
    onStatus?: (live: boolean) => void,
  ): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
