// A consumer of the client's watch() running in the background, the way a
// read model would: it keeps every item it was given (duplicates included),
// so a test can compare them with the committed events in PostgreSQL.

import type { ProfileClient, WatchItem, WatchOptions, WatchRequest, WatchRetry } from "../../client/src/index.js";
import type { ProfileEvent } from "../../gen/profile/v1/profile_pb.js";

export class WatchConsumer {
  readonly events: ProfileEvent[] = [];
  readonly items: WatchItem[] = [];
  readonly retries: WatchRetry[] = [];
  /** For each retry, how long before it the last item arrived: an idle timeout counts from there. */
  readonly silences: number[] = [];
  bookmarks = 0;
  private lastItemAt = Date.now();
  /** Why the iterator ended, when it did. */
  error: unknown;
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(
    client: ProfileClient,
    request: WatchRequest,
    options: WatchOptions = {},
    private readonly onItem?: (item: WatchItem) => Promise<void>,
  ) {
    const iterator = client.watch(request, {
      bookmarks: true,
      ...options,
      signal: this.abort.signal,
      onRetry: (r) => {
        this.retries.push(r);
        this.silences.push(Date.now() - this.lastItemAt);
        options.onRetry?.(r);
      },
    });
    this.done = (async () => {
      try {
        for await (const item of iterator) {
          this.items.push(item);
          this.lastItemAt = Date.now();
          if (item.type === "event") this.events.push(item.event);
          if (item.type === "bookmark") this.bookmarks++;
          await this.onItem?.(item);
        }
      } catch (err) {
        this.error = err;
      }
    })();
  }

  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (this.error !== undefined && !this.abort.signal.aborted) throw new Error("watch ended", { cause: this.error });
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; ${this.events.length} events, retries ${JSON.stringify(this.retries)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops the watch and waits for its loop to end. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  /** The loop's end, for a watch that is expected to end on its own. */
  ended(): Promise<void> {
    return this.done;
  }
}
