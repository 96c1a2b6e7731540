// The replica's one subscription to the seed's channels. It tells its
// listeners (the watch hub) that something changed, and when
// the subscription dropped or came back.

import { errorSummary, type Logger } from "../log/logger.js";
import type { Channels } from "./channels.js";
import type { EventBus } from "../store/event-bus.js";

export interface ChangeNotice {
  readonly userId: string | undefined;
  readonly eventId: string | undefined;
}

export interface ChangeListener {
  onChange(notice: ChangeNotice): void;
  /** `false`: messages may have been missed since; `true`: live again. */
  onStatus(live: boolean): void;
}

export class ChangeFeed {
  private readonly listeners: ChangeListener[] = [];
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly bus: EventBus,
    private readonly channels: Channels,
    private readonly log: Logger,
  ) {}

  add(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    try {
      this.unsubscribe = await this.bus.subscribe(
        [this.channels.profileUpdated, this.channels.profileDeleted, this.channels.preferencesUpdated],
        (_channel, message) => {
          const notice = parse(message);
          for (const l of this.listeners) l.onChange(notice);
        },
        (live) => {
          for (const l of this.listeners) l.onStatus(live);
        },
      );
    } catch (err) {
      // Listeners cope without it: the hub polls.
      this.log.warn({ err: errorSummary(err) }, "subscribing to change events failed");
      for (const l of this.listeners) l.onStatus(false);
    }
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.().catch(() => {});
  }
}

function parse(message: string): ChangeNotice {
  try {
    const { user_id, event_id } = JSON.parse(message) as { user_id?: unknown; event_id?: unknown };
    return {
      userId: typeof user_id === "string" ? user_id : undefined,
      eventId: typeof event_id === "string" ? event_id : undefined,
    };
  } catch {
    return { userId: undefined, eventId: undefined };
  }
}
