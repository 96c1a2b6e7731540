// Publishes the seed's events on its Redis channels, with the seed's JSON shapes.

import { errorSummary, type Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { Channels } from "../profiles/cache-keys.js";
import type { EventBus } from "../store/event-bus.js";

export type ChangeEvent =
  | { type: "profile_updated"; userId: string; updatedFields: readonly string[]; time: Date }
  | { type: "profile_deleted"; userId: string; time: Date }
  | { type: "preferences_updated"; userId: string; updatedFields: readonly string[]; time: Date };

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

/** `{user_id, updated_fields, timestamp}`, or `{user_id, timestamp}` for deletions. */
export function payloadOf(event: ChangeEvent): string {
  if (event.type === "profile_deleted") {
    return JSON.stringify({ user_id: event.userId, timestamp: event.time.toISOString() });
  }
  return JSON.stringify({
    user_id: event.userId,
    updated_fields: event.updatedFields,
    timestamp: event.time.toISOString(),
  });
}

export class EventPublisher {
  constructor(
    private readonly bus: EventBus,
    private readonly channels: Channels,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Never throws: the write it reports has already committed. */
  async publish(event: ChangeEvent): Promise<boolean> {
    const channel = channelOf(event, this.channels);
    try {
      await this.bus.publish(channel, payloadOf(event));
      this.metrics.eventsPublished.inc({ channel });
      return true;
    } catch (err) {
      this.metrics.eventPublishFailures.inc({ channel });
      this.log.warn({ err: errorSummary(err), channel, user_id: event.userId }, "event publish failed");
      return false;
    }
  }
}
