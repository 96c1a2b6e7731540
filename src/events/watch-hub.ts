// One per replica: tails the outbox in (xid, id) order and fans events out to
// this replica's watchers in process. Redis messages (from any replica's
// writes and the relay) and local commits wake it; a slow poll covers a quiet
// or unreachable Redis. Watchers therefore see every committed event exactly
// once, in order, whatever happened to the pub/sub message that announced it.

import { Code, ConnectError } from "@connectrpc/connect";
import { LRUCache } from "lru-cache";
import { errorSummary, type Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { ChangeEvent } from "./change-event.js";
import type { ChangeListener, ChangeNotice } from "./change-feed.js";
import type { EventFilter, Outbox } from "./outbox.js";
import { comparePositions, maxPosition, type Position } from "./position.js";
import { Watcher, type CatchUpSource } from "./watcher.js";

export interface WatchHubOptions {
  /** Events per outbox read while tailing; a watcher's queue must hold at least two pages. */
  tailPageSize: number;
  /** Events per outbox read while a resuming watcher replays (pulled at the client's pace). */
  replayPageSize: number;
  /** Safety-net poll, for when no wake-up arrives (Redis down, or a long transaction held events back). */
  pollIntervalMs: number;
  /** Idle watchers get a bookmark this often. */
  progressIntervalMs: number;
  /** Events a watcher may have queued before it is cut off. */
  queueSize: number;
}

export class ResumeTokenExpiredError extends Error {
  constructor() {
    super(
      "resume_token is older than the event retention window, so events may be missing: " +
        "re-read the data you need, then watch again without a resume_token",
    );
    this.name = "ResumeTokenExpiredError";
  }
}

export class WatchHub implements CatchUpSource, ChangeListener {
  /** Every event up to here has been offered to every live watcher. */
  private position: Position = { xid: 0n, id: 0n };
  private readonly byUser = new Map<string, Set<Watcher>>();
  private readonly everyone = new Set<Watcher>();
  private readonly all = new Set<Watcher>();
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private retriesLeft = 0;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  // With no watchers here the outbox is not read at all; the next watcher first skips to now.
  private idle = true;
  // Ids of events already read, so a wake-up for one of them costs nothing.
  private readonly recentlyRead = new LRUCache<string, true>({ max: 10_000 });

  constructor(
    private readonly outbox: Outbox,
    private readonly options: WatchHubOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.position = (await this.outbox.readAfter({ xid: 0n, id: 0n }, 0)).watermark;
    this.timers.push(
      setInterval(() => this.poll(), this.options.pollIntervalMs).unref(),
      setInterval(() => this.sendProgress(), this.options.progressIntervalMs).unref(),
    );
  }

  onChange(notice: ChangeNotice): void {
    this.wake(notice.eventId);
  }

  /** Back from a gap in notifications: catch up now rather than at the next poll. */
  onStatus(live: boolean): void {
    if (live) this.poll();
  }

  /** An event committed (here or on another replica): read the outbox now. */
  wake(eventId?: string): void {
    if (eventId !== undefined && this.recentlyRead.has(eventId)) return;
    // A committed event can be held back by an older transaction still running; retry a few times quickly.
    this.retriesLeft = 5;
    this.poll();
  }

  private poll(): void {
    if (this.stopped) return;
    if (this.all.size === 0) {
      this.idle = true;
      return;
    }
    if (this.reading !== undefined) {
      this.readAgain = true;
      return;
    }
    this.reading = this.readTail().finally(() => (this.reading = undefined));
  }

  /** Opens a watch from now, or after `from` (a resume token's position). */
  async open(filter: EventFilter, from: Position | undefined, reset: Watcher["reset"]): Promise<Watcher> {
    if (this.stopped) throw new ConnectError("server is shutting down; reconnect", Code.Unavailable);
    if (this.idle) await this.skipToNow();
    if (from === undefined) {
      const watcher = new Watcher(filter, this.position, this.options.queueSize, this, reset);
      this.attach(watcher);
      return watcher;
    }
    await this.checkRetained(from);
    const watcher = new Watcher(filter, from, this.options.queueSize, this, reset);
    this.all.add(watcher);
    this.metrics.watchersConnected.inc();
    return watcher;
  }

  async replay(cursor: Position, filter: EventFilter) {
    const upTo = this.position;
    if (comparePositions(cursor, upTo) >= 0) return { events: [], readThrough: cursor, complete: true };
    const { events } = await this.outbox.readAfter(cursor, this.options.replayPageSize, { upTo, filter });
    // Retention may have run while we read: a gap is only acceptable if nothing was pruned past our cursor.
    await this.checkRetained(cursor);
    const complete = events.length < this.options.replayPageSize;
    return { events, readThrough: complete ? upTo : (events.at(-1)?.position ?? cursor), complete };
  }

  /**
   * Everything below the watermark happened before anyone here was watching:
   * move past it without reading it. (Resuming watchers replay it themselves.)
   */
  private async skipToNow(): Promise<void> {
    const { watermark } = await this.outbox.readAfter(this.position, 0);
    this.position = maxPosition(this.position, watermark);
    this.idle = false;
  }

  goLive(watcher: Watcher): boolean {
    if (comparePositions(watcher.position, this.position) < 0) return false;
    // No await between the check above and this: no event can slip between replay and live.
    watcher.markLive();
    this.index(watcher, true);
    return true;
  }

  detach(watcher: Watcher): void {
    if (!this.all.delete(watcher)) return;
    this.index(watcher, false);
    this.metrics.watchersConnected.dec();
  }

  get watcherCount(): number {
    return this.all.size;
  }

  /**
   * Ends every stream with a final bookmark and UNAVAILABLE, so clients resume
   * on another replica. Streams that have not drained after `graceMs` are reset.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.reading?.catch(() => {});
    const error = new ConnectError("server is shutting down; resume on another instance with your last resume_token", Code.Unavailable);
    for (const watcher of this.all) watcher.finish(error);
    const deadline = Date.now() + graceMs;
    while (this.all.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const watcher of [...this.all]) {
      watcher.reset("shutdown");
      watcher.close();
    }
  }

  private attach(watcher: Watcher): void {
    this.all.add(watcher);
    this.metrics.watchersConnected.inc();
    watcher.markLive();
    this.index(watcher, true);
  }

  private index(watcher: Watcher, add: boolean): void {
    const userIds = watcher.filter.userIds ?? [];
    if (userIds.length === 0) {
      if (add) this.everyone.add(watcher);
      else this.everyone.delete(watcher);
      return;
    }
    for (const userId of userIds) {
      let set = this.byUser.get(userId);
      if (add) {
        if (set === undefined) this.byUser.set(userId, (set = new Set()));
        set.add(watcher);
      } else if (set !== undefined) {
        set.delete(watcher);
        if (set.size === 0) this.byUser.delete(userId);
      }
    }
  }

  private async readTail(): Promise<void> {
    try {
      for (;;) {
        this.readAgain = false;
        const { events, watermark } = await this.outbox.readAfter(this.position, this.options.tailPageSize);
        for (const event of events) this.fanOut(event);
        if (events.length === this.options.tailPageSize) continue;
        this.position = maxPosition(this.position, watermark);
        if (this.readAgain) continue;
        if (events.length === 0 && this.retriesLeft > 0) {
          this.retriesLeft--;
          setTimeout(() => this.poll(), 25).unref();
        }
        return;
      }
    } catch (err) {
      this.log.warn({ err: errorSummary(err) }, "reading the event outbox failed; retrying on the next poll");
    }
  }

  private fanOut(event: ChangeEvent): void {
    this.position = event.position;
    this.recentlyRead.set(event.eventId, true);
    this.byUser.get(event.userId)?.forEach((w) => w.offer(event));
    this.everyone.forEach((w) => w.offer(event));
  }

  private sendProgress(): void {
    for (const watcher of this.all) {
      if (!watcher.isLive) continue;
      if (!watcher.active) watcher.bookmark(this.position, true);
      watcher.active = false;
    }
  }

  private async checkRetained(position: Position): Promise<void> {
    const pruned = await this.outbox.prunedThrough();
    if (pruned !== undefined && comparePositions(position, pruned) < 0) throw new ResumeTokenExpiredError();
  }
}

