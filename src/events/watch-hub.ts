// One per replica: tails the outbox in (xid, id) order and fans events out to
// this replica's watchers in process. Redis messages (from any replica's
// writes and the relay) and local commits wake it; a slow poll covers a quiet
// or unreachable Redis. Watchers therefore see every committed event exactly
// once, in order, whatever happened to the pub/sub message that announced it.

import { LRUCache } from "lru-cache";
import { errorSummary, type Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { ChangeEvent } from "./change-event.js";
import type { ChangeListener, ChangeNotice } from "./change-feed.js";
import { BoundedConcurrency, QueueFullError } from "./bounded-concurrency.js";
import { FreshRead } from "./fresh-read.js";
import type { EventFilter, Outbox } from "./outbox.js";
import { comparePositions, maxPosition, type Position } from "./position.js";
import { ResumeTokens, type ResumePoint } from "./resume-token.js";
import { Watcher, type CatchUpSource } from "./watcher.js";
import {
  ResumeTokenExpiredError,
  UnusableResumeTokenError,
  WatchLimitError,
  WatchShutdownError,
} from "./watch-errors.js";

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
  /**
   * Catch-up reads of resuming watchers: how many run at once (a share of the
   * database pool, so the rest stays free for ordinary calls), and how many may
   * wait, for how long, before a watcher is refused with RESOURCE_EXHAUSTED.
   */
  catchUp: { concurrency: number; maxQueued: number; maxWaitMs: number };
}

export const WATCH_HUB_DEFAULTS: WatchHubOptions = {
  tailPageSize: 100,
  replayPageSize: 500,
  pollIntervalMs: 1000,
  progressIntervalMs: 10_000,
  queueSize: 1000,
  catchUp: { concurrency: 1, maxQueued: 10_000, maxWaitMs: 10_000 },
};

/** Options over the defaults; `catchUp` merges field by field. */
export type WatchHubSettings = Partial<Omit<WatchHubOptions, "catchUp">> & {
  catchUp?: Partial<WatchHubOptions["catchUp"]>;
};

const HELD_BACK_FIRST_RETRY_MS = 25;
const HELD_BACK_MAX_RETRY_MS = 1000;
// An announced id that never shows (its event was read before and has left
// recentlyRead) stops being retried after this; the poll still covers the rest.
const ANNOUNCED_RETRY_MS = 30_000;

export class WatchHub implements CatchUpSource, ChangeListener {
  /** Every event up to here has been offered to every live watcher. */
  private position: Position = { xid: 0n, id: 0n };
  private readonly byUser = new Map<string, Set<Watcher>>();
  private readonly everyone = new Set<Watcher>();
  private readonly all = new Set<Watcher>();
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  // With no watchers here the outbox is not read at all; the next watcher first skips to now.
  private idle = true;
  // Ids of events already read, so a wake-up for one of them costs nothing.
  private readonly recentlyRead = new LRUCache<string, true>({ max: 10_000 });
  // Events we were told have committed but have not read yet: an older
  // transaction still running (anywhere in the cluster, as transaction ids are
  // cluster-wide) keeps them above the watermark. They are read again with
  // backoff until they show, rather than at the next safety-net poll.
  private readonly announced = new LRUCache<string, true>({ max: 10_000, ttl: ANNOUNCED_RETRY_MS });
  private heldBackRetry: { timer: NodeJS.Timeout | undefined; delayMs: number } = {
    timer: undefined,
    delayMs: HELD_BACK_FIRST_RETRY_MS,
  };
  private tokens: ResumeTokens | undefined;
  private lastToken: { position: Position; token: string } | undefined;
  // What every open may need, read once per burst instead of once per open.
  private readonly watermark: FreshRead<Position>;
  private readonly pruned: FreshRead<Position | undefined>;
  private readonly catchUp: BoundedConcurrency;
  private readonly options: WatchHubOptions;

  constructor(
    private readonly outbox: Outbox,
    settings: WatchHubSettings,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.options = {
      ...WATCH_HUB_DEFAULTS,
      ...settings,
      catchUp: { ...WATCH_HUB_DEFAULTS.catchUp, ...settings.catchUp },
    };
    this.watermark = new FreshRead(async () => (await outbox.readAfter(this.position, 0)).watermark);
    this.pruned = new FreshRead(() => outbox.prunedThrough());
    this.catchUp = new BoundedConcurrency(this.options.catchUp);
  }

  async start(): Promise<void> {
    const log = await this.outbox.eventLog();
    if (log.renewed !== undefined && log.renewed !== "first start") {
      this.log.warn(
        { reason: log.renewed },
        "this database is not the one the event log was made in; resume tokens issued before are refused",
      );
    }
    this.tokens = new ResumeTokens(log);
    this.position = (await this.outbox.readAfter({ xid: 0n, id: 0n }, 0)).watermark;
    this.timers.push(setInterval(() => this.poll(), this.options.pollIntervalMs).unref());
  }

  /** A client's resume_token, or undefined when it is not one of ours at all (INVALID_ARGUMENT). */
  resumePoint(token: string): ResumePoint | undefined {
    return this.started.decode(token);
  }

  resumeToken(position: Position): string {
    // Every watcher of an event asks for the same token (an HMAC): the last one is kept.
    if (this.lastToken?.position !== position) {
      this.lastToken = { position, token: this.started.encode(position) };
    }
    return this.lastToken.token;
  }

  get livePosition(): Position {
    return this.position;
  }

  private get started(): ResumeTokens {
    if (this.tokens === undefined) throw new Error("the watch hub has not started");
    return this.tokens;
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
    if (eventId !== undefined) {
      if (this.recentlyRead.has(eventId)) return;
      if (this.all.size > 0) this.announced.set(eventId, true);
    }
    this.heldBackRetry.delayMs = HELD_BACK_FIRST_RETRY_MS;
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

  /** Opens a watch from now, or after `from` (a client's resume token, from `resumePoint`). */
  async open(filter: EventFilter, from: ResumePoint | undefined, reset: Watcher["reset"]): Promise<Watcher> {
    if (this.stopped) throw new WatchShutdownError("server is shutting down; reconnect");
    if (this.idle) await this.skipToNow();
    const interval = this.options.progressIntervalMs;
    if (from === undefined) {
      const watcher = new Watcher(filter, this.position, this.options.queueSize, this, reset, interval);
      this.attach(watcher);
      return watcher;
    }
    if (from.kind === "foreign") {
      throw new UnusableResumeTokenError(
        "resume_token comes from another event log (another database or environment, or a copy restored " +
          "elsewhere), so its position means nothing here",
      );
    }
    await this.checkNotAhead(from.position);
    await this.checkRetained(from.position);
    const watcher = new Watcher(filter, from.position, this.options.queueSize, this, reset, interval);
    this.all.add(watcher);
    this.metrics.watchersConnected.inc();
    return watcher;
  }

  async replay(cursor: Position, filter: EventFilter) {
    const upTo = this.position;
    if (comparePositions(cursor, upTo) >= 0) return { events: [], readThrough: cursor, complete: true };
    const { events } = await this.queuedForCatchUp(() =>
      this.outbox.readAfter(cursor, this.options.replayPageSize, { upTo, filter }),
    );
    // Retention may have run while we read: a gap is only acceptable if nothing was pruned past our cursor.
    await this.checkRetained(cursor);
    const complete = events.length < this.options.replayPageSize;
    return { events, readThrough: complete ? upTo : (events.at(-1)?.position ?? cursor), complete };
  }

  private async queuedForCatchUp<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await this.catchUp.run(read);
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err;
      throw new WatchLimitError(
        "too many watch streams are catching up at once; retry with backoff, resuming from your last resume_token",
      );
    }
  }

  /**
   * Everything below the watermark happened before anyone here was watching:
   * move past it without reading it. (Resuming watchers replay it themselves.)
   */
  private async skipToNow(): Promise<void> {
    const watermark = await this.watermark.get();
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
    clearTimeout(this.heldBackRetry.timer);
    await this.reading?.catch(() => {});
    const error = new WatchShutdownError(
      "server is shutting down; resume on another instance with your last resume_token",
    );
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
        this.retryHeldBack();
        return;
      }
    } catch (err) {
      this.log.warn({ err: errorSummary(err) }, "reading the event outbox failed; retrying on the next poll");
    }
  }

  /** Reads again after a backoff (doubling, up to a second) while an announced event has not shown up. */
  private retryHeldBack(): void {
    this.announced.purgeStale();
    const retry = this.heldBackRetry;
    if (this.announced.size === 0 || retry.timer !== undefined) return;
    const delayMs = retry.delayMs;
    retry.delayMs = Math.min(delayMs * 2, HELD_BACK_MAX_RETRY_MS, this.options.pollIntervalMs);
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      this.poll();
    }, delayMs).unref();
  }

  private fanOut(event: ChangeEvent): void {
    this.position = event.position;
    this.recentlyRead.set(event.eventId, true);
    this.announced.delete(event.eventId);
    this.byUser.get(event.userId)?.forEach((w) => w.offer(event));
    this.everyone.forEach((w) => w.offer(event));
  }

  /**
   * No token of this log can be past the watermark: every position handed out
   * (here or on another replica) was below one. One that is ahead was made up,
   * or comes from a database that has since been replaced by an older copy,
   * and resuming from it would skip every event up to there.
   */
  private async checkNotAhead(position: Position): Promise<void> {
    if (comparePositions(position, this.position) <= 0) return;
    // Another replica may have read further than this one: compare with a watermark read now.
    const watermark = await this.watermark.get();
    if (comparePositions(position, watermark) > 0) {
      throw new UnusableResumeTokenError(
        "resume_token is ahead of this database's event log (was the database replaced by an older copy?)",
      );
    }
  }

  private async checkRetained(position: Position): Promise<void> {
    const pruned = await this.pruned.get();
    if (pruned !== undefined && comparePositions(position, pruned) < 0) throw new ResumeTokenExpiredError();
  }
}
