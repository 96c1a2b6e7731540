// Finishes committed events: deletes the cache keys each one touches, then
// publishes it on the seed's Redis channel with the seed's JSON shape (plus
// `event_id`, so subscribers can drop the duplicates that at-least-once
// delivery allows). An event is done only when both have succeeded; the
// writer tries first (CommitListener), and the relay retries whatever failed
// until it lands. The order of the two is an invariant, kept in `deliver`.

import { errorSummary, type Logger } from "../log/logger.js";
import { inBackground } from "../log/background.js";
import { rateLimited } from "../log/rate-limited.js";
import type { Metrics } from "../metrics/metrics.js";
import type { CacheKeys } from "../cache/cache-keys.js";
import type { Channels } from "./channels.js";
import type { SuspectKeys } from "../cache/suspect-keys.js";
import type { EventBus } from "../store/event-bus.js";
import type { ChangeEvent } from "./change-event.js";
import type { CommitListener } from "./commit-listener.js";
import type { Outbox } from "./outbox.js";
import type { UnfinishedEvents } from "./unfinished-events.js";

export function channelOf(event: ChangeEvent, channels: Channels): string {
  switch (event.type) {
    case "profile_updated":
      return channels.profileUpdated;
    case "profile_deleted":
      return channels.profileDeleted;
    case "preferences_updated":
      return channels.preferencesUpdated;
  }
}

/** The cache keys an event makes stale. */
export function keysOf(event: ChangeEvent, keys: CacheKeys): string[] {
  switch (event.type) {
    case "profile_updated":
      return [keys.profile(event.userId)];
    case "preferences_updated":
      return [keys.preferences(event.userId)];
    case "profile_deleted":
      return [keys.profile(event.userId), keys.preferences(event.userId)];
  }
}

/** `{user_id, updated_fields, timestamp, event_id}`; deletions have no `updated_fields`. */
export function payloadOf(event: ChangeEvent): string {
  if (event.type === "profile_deleted") {
    return JSON.stringify({ user_id: event.userId, timestamp: event.time.toISOString(), event_id: event.eventId });
  }
  return JSON.stringify({
    user_id: event.userId,
    updated_fields: event.updatedFields,
    timestamp: event.time.toISOString(),
    event_id: event.eventId,
  });
}

/** What deletes cache keys: the cache-aside. */
export interface KeyInvalidator {
  invalidate(keys: readonly string[]): Promise<void>;
}

export interface EventPublisherDeps {
  cache: KeyInvalidator;
  bus: EventBus;
  keys: CacheKeys;
  channels: Channels;
  /** Where finished events are marked done. */
  outbox: Outbox;
  /** Where the writer's failures wait for the relay. */
  unfinished: UnfinishedEvents;
  /** This replica's watchers, woken by a commit here without waiting for the bus. */
  localWatchers?: { wake(eventId: string): void };
  /** Where this replica notes the keys it failed to invalidate, so its own reads avoid them. */
  suspect?: SuspectKeys;
  metrics: Metrics;
  log: Logger;
}

export interface EventPublisherOptions {
  /**
   * The cache and the bus do not share one ordered connection (Redis
   * Cluster: the key's node and the publishing node differ), so the PUBLISH
   * must wait for the DEL's reply.
   */
  publishWaitsForInvalidation: boolean;
  /** Done marks are batched: one UPDATE per interval instead of one per write. */
  markIntervalMs: number;
}

export const EVENT_PUBLISHER_DEFAULTS: EventPublisherOptions = {
  publishWaitsForInvalidation: false,
  markIntervalMs: 200,
};

interface Delivery {
  invalidated: boolean;
  published: boolean;
}

export class EventPublisher implements CommitListener {
  private readonly options: EventPublisherOptions;
  private unmarked: string[] = [];
  private readonly flushTimer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly deps: EventPublisherDeps,
    options: Partial<EventPublisherOptions> = {},
  ) {
    this.options = { ...EVENT_PUBLISHER_DEFAULTS, ...options };
    this.flushTimer = setInterval(
      () => inBackground(this.flushMarks(), deps.log, "mark invalidated"),
      this.options.markIntervalMs,
    ).unref();
  }

  /**
   * Finishes an event that has just committed, for its writer. When its DEL
   * or PUBLISH failed, the keys whose DEL failed are suspect on this replica,
   * and the event waits for the relay.
   */
  async committed(event: ChangeEvent): Promise<void> {
    this.deps.localWatchers?.wake(event.eventId);
    const { invalidated, published } = await this.deliver(event, true);
    if (!invalidated) this.deps.suspect?.add(keysOf(event, this.deps.keys), event.eventId);
    if (invalidated && published) this.unmarked.push(event.eventId);
    else this.deps.unfinished.hold(event);
  }

  /**
   * Finishes events for the relay, all at once (one pipelined round trip on
   * a single node). Returns the ids of those done; their failures were
   * counted and logged when their writer tried, so they are not again.
   */
  async retry(events: readonly ChangeEvent[]): Promise<string[]> {
    const deliveries = await Promise.all(events.map((e) => this.deliver(e, false)));
    return events.filter((_, i) => deliveries[i]!.invalidated && deliveries[i]!.published).map((e) => e.eventId);
  }

  /** Another replica finished `event` (its DEL landed after the commit): its keys are sound here too. */
  finishedElsewhere(event: ChangeEvent): void {
    this.deps.suspect?.eventDone(keysOf(event, this.deps.keys), event.eventId);
  }

  /**
   * The invariant: DEL before PUBLISH. A subscriber that reads the cache on
   * an event must never find the value the event replaced. Every path that
   * finishes an event (its writer, the relay) goes through here, so this is
   * the one place that keeps it:
   * - on one Redis connection (a single node, a Sentinel's primary) both are
   *   issued in the same tick: they travel in one pipelined round trip and
   *   Redis runs the DEL first;
   * - on a cluster the PUBLISH may go to another node and overtake the DEL,
   *   so it waits for the DEL's reply, and is not sent at all when the DEL
   *   failed (the relay will send both). test/redis-cluster.test.ts shows
   *   the overtaking without the wait.
   */
  private async deliver(event: ChangeEvent, byWriter: boolean): Promise<Delivery> {
    const invalidating = this.invalidate(event, byWriter);
    if (this.options.publishWaitsForInvalidation) {
      if (!(await invalidating)) return { invalidated: false, published: false };
      return { invalidated: true, published: await this.publish(event, byWriter) };
    }
    const [invalidated, published] = await Promise.all([invalidating, this.publish(event, byWriter)]);
    return { invalidated, published };
  }

  private async invalidate(event: ChangeEvent, byWriter: boolean): Promise<boolean> {
    const { suspect, metrics, log } = this.deps;
    const keys = keysOf(event, this.deps.keys);
    const token = suspect?.beforeDelete();
    try {
      await this.deps.cache.invalidate(keys);
      if (token !== undefined) suspect?.deleted(keys, token);
      return true;
    } catch (err) {
      if (byWriter) {
        metrics.invalidationFailures.inc();
        rateLimited(log).error(
          "cache invalidation failed",
          { user_id: event.userId, event_id: event.eventId, err: errorSummary(err) },
          "cache invalidation failed",
        );
      }
      return false;
    }
  }

  private async publish(event: ChangeEvent, byWriter: boolean): Promise<boolean> {
    const { metrics, log } = this.deps;
    const channel = channelOf(event, this.deps.channels);
    try {
      await this.deps.bus.publish(channel, payloadOf(event));
      metrics.eventsPublished.inc({ channel });
      return true;
    } catch (err) {
      if (byWriter) {
        metrics.eventPublishFailures.inc({ channel });
        rateLimited(log).warn(
          `event publish failed: ${channel}`,
          { err: errorSummary(err), channel, user_id: event.userId, event_id: event.eventId },
          "event publish failed; the relay will retry",
        );
      }
      return false;
    }
  }

  async flushMarks(): Promise<void> {
    if (this.flushing !== undefined || this.unmarked.length === 0) return this.flushing;
    const ids = this.unmarked;
    this.unmarked = [];
    this.flushing = this.deps.outbox
      .markInvalidated(ids)
      .catch((err: unknown) => {
        // Unmarked events are finished again by the relay: a duplicate DEL and PUBLISH, never a loss.
        this.deps.log.warn({ err: errorSummary(err), count: ids.length }, "marking events invalidated failed");
      })
      .finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    await this.flushing;
    await this.flushMarks();
  }
}
