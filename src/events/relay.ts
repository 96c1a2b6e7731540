// Finishes events that committed but were not finished: their cache DEL or
// their PUBLISH failed (a Redis outage, a failover, a network cut), or their
// writer never got to try (a crash between COMMIT and DEL, a write that
// committed after its replica shut down). Runs on every replica, and retries
// until it lands: an event is done only when both its DEL and its PUBLISH
// have succeeded, and only then is it marked so.

import { errorSummary, type Logger } from "../log/logger.js";
import { inBackground } from "../log/background.js";
import type { Metrics } from "../metrics/metrics.js";
import type { SuspectKeys } from "../cache/suspect-keys.js";
import type { ChangeEvent } from "./change-event.js";
import type { Outbox } from "./outbox.js";
import type { EventPublisher } from "./publisher.js";
import type { UnfinishedEvents } from "./unfinished-events.js";

export interface EventRelayDeps {
  outbox: Outbox;
  publisher: EventPublisher;
  /** What this replica's writers could not finish, retried first and without grace. */
  unfinished: UnfinishedEvents;
  suspect?: SuspectKeys;
  metrics: Metrics;
  log: Logger;
}

export interface EventRelayOptions {
  intervalMs: number;
  /** Events younger than this are left to their writer (unless their writer here saw them fail). */
  graceMs: number;
  batchSize: number;
  retentionHours: number;
  pruneIntervalMs: number;
}

export const EVENT_RELAY_DEFAULTS: EventRelayOptions = {
  intervalMs: 500,
  graceMs: 1000,
  batchSize: 500,
  retentionHours: 24,
  pruneIntervalMs: 600_000,
};

export class EventRelay {
  private readonly options: EventRelayOptions;
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<void> | undefined;
  // Redis failed everything the last pass gave it: try one event before a whole batch.
  private probing = false;

  constructor(
    private readonly deps: EventRelayDeps,
    options: Partial<EventRelayOptions> = {},
  ) {
    this.options = { ...EVENT_RELAY_DEFAULTS, ...options };
  }

  start(): void {
    this.timers.push(
      setInterval(() => inBackground(this.runOnce(), this.deps.log, "relay"), this.options.intervalMs).unref(),
      setInterval(() => inBackground(this.prune(), this.deps.log, "prune"), this.options.pruneIntervalMs).unref(),
    );
  }

  /** Finishes everything overdue; resolves when done (or when this pass failed). */
  runOnce(): Promise<void> {
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return this.running;
  }

  async prune(): Promise<number> {
    try {
      const deleted = await this.deps.outbox.prune(this.options.retentionHours);
      if (deleted > 0) this.deps.log.info({ deleted }, "pruned events past retention");
      return deleted;
    } catch (err) {
      this.deps.log.warn({ err: errorSummary(err) }, "pruning events failed");
      return 0;
    }
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.running;
  }

  private async drain(): Promise<void> {
    try {
      // While Redis still fails the events held here, the scan would only lock
      // rows (SKIP LOCKED) that a replica that can reach Redis could finish.
      if (!(await this.retryUnfinished())) return;
      await this.scanOutbox();
      await this.trustCacheAgain();
    } catch (err) {
      this.deps.log.warn({ err: errorSummary(err) }, "relaying events failed; retrying on the next pass");
    }
  }

  /**
   * Retries the events held here, oldest first, through the outbox, so that
   * no other replica's relay finishes one at the same time. False when Redis
   * failed every one it was given.
   */
  private async retryUnfinished(): Promise<boolean> {
    const { unfinished } = this.deps;
    const ids = unfinished.held();
    for (let i = 0; i < ids.length; i += this.options.batchSize) {
      let given = 0;
      const { delivered, doneBefore } = await this.deps.outbox.finish(
        ids.slice(i, i + this.options.batchSize),
        (events) => {
          given = events.length;
          return this.deliver(events);
        },
      );
      for (const id of delivered) unfinished.done(id);
      // Another replica's relay got there first: its DEL landed after the commit.
      for (const event of doneBefore) {
        unfinished.done(event.eventId);
        this.deps.publisher.finishedElsewhere(event);
      }
      this.deps.metrics.eventsRelayed.inc(delivered.length);
      if (given > 0 && delivered.length === 0) return false;
    }
    return true;
  }

  /** Finishes events nobody finished within the grace, from the outbox, in (xid, id) order. */
  private async scanOutbox(): Promise<void> {
    for (;;) {
      const { taken, done } = await this.deps.outbox.relay(this.options.graceMs, this.options.batchSize, (events) =>
        this.deliver(events),
      );
      this.deps.metrics.eventsRelayed.inc(done);
      if (taken < this.options.batchSize || done < taken) return;
    }
  }

  /**
   * Delivers a batch; after a pass in which Redis failed everything, one
   * event goes first, so that an outage costs one failed attempt per pass
   * rather than a batch of them.
   */
  private async deliver(events: ChangeEvent[]): Promise<string[]> {
    if (this.probing && events.length > 1) {
      const first = await this.deps.publisher.retry(events.slice(0, 1));
      if (first.length === 0) return [];
      this.probing = false;
      return [...first, ...(await this.deps.publisher.retry(events.slice(1)))];
    }
    const done = await this.deps.publisher.retry(events);
    this.probing = events.length > 0 && done.length === 0;
    return done;
  }

  /** After too many failures to track key by key, every read bypasses the cache until the outbox has caught up. */
  private async trustCacheAgain(): Promise<void> {
    const through = this.deps.suspect?.coveredThrough;
    if (through === undefined) return;
    if (await this.deps.outbox.invalidatedThrough(through)) this.deps.suspect!.invalidatedThrough(through);
  }
}
