import type { Position } from "./position.js";

export type ChangeType = "profile_updated" | "profile_deleted" | "preferences_updated";

/** One committed change, as recorded in the outbox. */
export interface ChangeEvent {
  /** The outbox row id, unique per event: subscribers dedupe by it. */
  readonly eventId: string;
  readonly position: Position;
  readonly type: ChangeType;
  readonly userId: string;
  /** Proto field names the write changed; empty for deletions. */
  readonly updatedFields: readonly string[];
  readonly time: Date;
  /** The W3C traceparent of the write's span, when it was traced: a watcher's delivery links to it. */
  readonly traceContext?: string;
}
