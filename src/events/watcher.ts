// One WatchProfileEvents stream: a bounded queue of events and bookmarks that
// the RPC handler drains. While it is behind the hub it replays from the outbox
// at the pace the client reads; once caught up it receives live events, and a
// bookmark whenever it has been sent nothing for the progress interval.

import type { ChangeEvent, ChangeType } from "./change-event.js";
import type { EventFilter } from "./outbox.js";
import { comparePositions, type Position } from "./position.js";
import { WatchLimitError } from "./watch-errors.js";

export type WatchItem =
  | { kind: "event"; event: ChangeEvent; resumeToken: string }
  | { kind: "bookmark"; position: Position; resumeToken: string };

/** What the watcher needs from the hub while it catches up. */
export interface CatchUpSource {
  /**
   * Reads the next page after `cursor`. `readThrough` is how far it read;
   * `complete` means nothing matching is left up to the hub's position then.
   */
  replay(
    cursor: Position,
    filter: EventFilter,
  ): Promise<{ events: ChangeEvent[]; readThrough: Position; complete: boolean }>;
  /** Registers the watcher for live events if it has caught up; true when it did. */
  goLive(watcher: Watcher): boolean;
  detach(watcher: Watcher): void;
  /** Everything up to here has been offered to live watchers: what an idle bookmark says. */
  readonly livePosition: Position;
  resumeToken(position: Position): string;
}

export class Watcher implements AsyncIterable<WatchItem> {
  private readonly queue: WatchItem[] = [];
  private wakeReader: (() => void) | undefined;
  private failure: Error | undefined;
  private closed = false;
  private live = false;
  /** The newest position queued (events or bookmark): tokens never go backwards. */
  private queuedThrough: Position;
  /** Fires after the progress interval without a message; every message restarts it. */
  private readonly idleTimer: NodeJS.Timeout;

  private readonly userIds: ReadonlySet<string> | undefined;
  private readonly types: ReadonlySet<ChangeType> | undefined;

  constructor(
    readonly filter: EventFilter,
    /** Everything up to here has been delivered (or did not match). */
    private cursor: Position,
    private readonly capacity: number,
    private readonly source: CatchUpSource,
    /** Resets the underlying stream, for when queued data cannot get out. */
    readonly reset: (reason: "overflow" | "shutdown") => void,
    progressIntervalMs: number,
  ) {
    this.queuedThrough = cursor;
    this.userIds = filter.userIds?.length ? new Set(filter.userIds) : undefined;
    this.types = filter.types?.length ? new Set(filter.types) : undefined;
    // Per stream, from its own last message: a shared tick would send the first one up to an interval late.
    this.idleTimer = setTimeout(() => this.onIdle(), progressIntervalMs).unref();
    this.pushBookmark(cursor);
  }

  get isLive(): boolean {
    return this.live;
  }

  get position(): Position {
    return this.cursor;
  }

  markLive(): void {
    this.live = true;
  }

  matches(event: ChangeEvent): boolean {
    return (
      (this.userIds === undefined || this.userIds.has(event.userId)) &&
      (this.types === undefined || this.types.has(event.type))
    );
  }

  /** A live event from the hub. Never blocks: a full queue ends the watch. */
  offer(event: ChangeEvent): void {
    if (this.closed || comparePositions(event.position, this.cursor) <= 0) return;
    this.cursor = event.position;
    if (!this.matches(event)) return;
    if (this.queue.length >= this.capacity) {
      this.fail(new WatchLimitError("watcher fell too far behind; resume with the last resume_token"));
      this.reset("overflow");
      return;
    }
    this.enqueueEvent(event);
  }

  /** "Everything up to `position` has been delivered": sent if it is news, or always with `repeat`. */
  bookmark(position: Position, repeat = false): void {
    if (this.closed) return;
    if (comparePositions(position, this.cursor) > 0) this.cursor = position;
    if (!repeat && comparePositions(this.cursor, this.queuedThrough) <= 0) return;
    this.pushBookmark(this.cursor);
  }

  /** Ends the stream after what is queued: a final bookmark, then `error`. */
  finish(error: Error): void {
    if (this.closed || this.failure !== undefined) return;
    this.pushBookmark(this.cursor, true);
    this.failure = error;
    this.wakeReader?.();
  }

  /** Frees everything at once (client gone, or overflow). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.queue.length = 0;
    this.source.detach(this);
    this.wakeReader?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WatchItem> {
    try {
      for (;;) {
        const item = this.queue.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (this.failure !== undefined) throw this.failure;
        if (this.closed) return;
        if (!this.live) {
          await this.catchUp();
          continue;
        }
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
        this.wakeReader = undefined;
      }
    } finally {
      this.close();
    }
  }

  // One page per call, only when the client has drained what came before, so
  // replay never buffers more than a page.
  private async catchUp(): Promise<void> {
    const { events, readThrough, complete } = await this.source.replay(this.cursor, this.filter);
    if (this.closed) return;
    for (const event of events) {
      this.cursor = event.position;
      this.enqueueEvent(event);
    }
    if (comparePositions(readThrough, this.cursor) > 0) this.cursor = readThrough;
    if (complete && this.source.goLive(this)) {
      // Caught up: say so, so a resuming client gets its first fresh token promptly.
      this.bookmark(this.cursor);
    }
  }

  private fail(error: Error): void {
    this.failure = error;
    this.queue.length = 0;
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.source.detach(this);
    this.wakeReader?.();
  }

  private onIdle(): void {
    if (this.closed || this.failure !== undefined) return;
    // A stream still catching up is busy reading, not idle; it gets a bookmark when it goes live.
    if (this.live) this.bookmark(this.source.livePosition, true);
    else this.idleTimer.refresh();
  }

  private pushBookmark(position: Position, force = false): void {
    // Coalesce: a bookmark right behind another replaces it.
    const last = this.queue.at(-1);
    if (last?.kind === "bookmark") this.queue.pop();
    if (force || comparePositions(position, this.queuedThrough) >= 0) {
      this.enqueue({ kind: "bookmark", position, resumeToken: this.source.resumeToken(position) });
    }
  }

  private enqueueEvent(event: ChangeEvent): void {
    this.enqueue({ kind: "event", event, resumeToken: this.source.resumeToken(event.position) });
  }

  private enqueue(item: WatchItem): void {
    this.queue.push(item);
    this.queuedThrough = item.kind === "event" ? item.event.position : item.position;
    this.idleTimer.refresh();
    this.wakeReader?.();
  }
}
