// Events this replica's writers committed but could not finish (their DEL or
// their PUBLISH failed). The publisher holds them here; the relay retries
// them on its next pass with no grace, since their writer has already given
// up on them. Bounded: past `max`, an event is left to the outbox scan (after
// the grace), and this replica's reads bypass the cache until the outbox has
// caught up with it.

import { MAX_TRACKED_FAILURES, type SuspectKeys } from "../cache/suspect-keys.js";
import type { ChangeEvent } from "./change-event.js";

export class UnfinishedEvents {
  // In the order they failed (about commit order).
  private readonly ids = new Set<string>();

  constructor(
    private readonly suspect: SuspectKeys | undefined,
    private readonly max = MAX_TRACKED_FAILURES,
  ) {}

  hold(event: ChangeEvent): void {
    if (this.ids.size >= this.max) {
      this.suspect?.coverAll(event.eventId);
      return;
    }
    this.ids.add(event.eventId);
  }

  /** The ids held, oldest first. */
  held(): string[] {
    return [...this.ids];
  }

  done(eventId: string): void {
    this.ids.delete(eventId);
  }
}
