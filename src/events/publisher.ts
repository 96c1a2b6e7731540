// Publishes committed events on the seed's Redis channels with the seed's JSON
// shapes, plus `event_id` so subscribers can drop the duplicates that
// at-least-once delivery allows.

import { errorSummary, type Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { Channels } from "../profiles/cache-keys.js";
import type { EventBus } from "../store/event-bus.js";
import type { ChangeEvent } from "./change-event.js";
import type { Outbox } from "./outbox.js";

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

export class EventPublisher {
  private unmarked: string[] = [];
  private readonly flushTimer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly bus: EventBus,
    private readonly channels: Channels,
    private readonly outbox: Outbox,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    markIntervalMs = 200,
  ) {
    this.flushTimer = setInterval(() => void this.flushMarks(), markIntervalMs).unref();
  }

  /**
   * Publishes an event that has just committed. Never throws: when it fails,
   * the relay publishes the event later.
   */
  async publishCommitted(event: ChangeEvent): Promise<void> {
    // Marks are batched: one UPDATE per interval instead of one per write.
    if (await this.publish(event)) this.unmarked.push(event.eventId);
  }

  async publish(event: ChangeEvent): Promise<boolean> {
    const channel = channelOf(event, this.channels);
    try {
      await this.bus.publish(channel, payloadOf(event));
      this.metrics.eventsPublished.inc({ channel });
      return true;
    } catch (err) {
      this.metrics.eventPublishFailures.inc({ channel });
      this.log.warn({ err: errorSummary(err), channel, user_id: event.userId, event_id: event.eventId }, "event publish failed; the relay will retry");
      return false;
    }
  }

  async flushMarks(): Promise<void> {
    if (this.flushing !== undefined || this.unmarked.length === 0) return this.flushing;
    const ids = this.unmarked;
    this.unmarked = [];
    this.flushing = this.outbox
      .markPublished(ids)
      .catch((err: unknown) => {
        // Unmarked events get published again by the relay: a duplicate, never a loss.
        this.log.warn({ err: errorSummary(err), count: ids.length }, "marking events published failed");
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
