// The seam between the domain and the bus: Profiles commits a change with its
// outbox event, then hands the event to its CommitListener before the write
// answers. EventPublisher is the implementation (invalidate, then publish,
// and hold for the relay whatever failed).

import type { ChangeEvent } from "./change-event.js";

export interface CommitListener {
  /** `event` has just committed. Resolves once it is finished or held for retry; never throws. */
  committed(event: ChangeEvent): Promise<void>;
}
