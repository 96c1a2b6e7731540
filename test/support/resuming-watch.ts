// A WatchProfileEvents client that does what the README tells watchers to
// do: on any error except the four that resuming cannot fix, open the stream
// again with the last resume_token it processed. It keeps every event it was
// given, duplicates included, so a test can check for gaps and repeats.

import type { ProfileEvent, WatchProfileEventsResponse } from "../../gen/profile/v1/profile_pb.js";
import { grpc } from "./grpc-client.js";
import type { TaggedClient } from "./tagged-client.js";

/** Codes after which the same request, resumed, would fail again. */
export const DO_NOT_RESUME: readonly grpc.status[] = [
  grpc.status.INVALID_ARGUMENT,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.FAILED_PRECONDITION,
];

export interface StreamEnd {
  callId: string;
  code: grpc.status;
  details: string;
}

export class ResumingWatch {
  readonly events: ProfileEvent[] = [];
  readonly ends: StreamEnd[] = [];
  bookmarks = 0;
  private token = "";
  private call: grpc.ClientReadableStream<WatchProfileEventsResponse> | undefined;
  private opened = 0;
  private stopped = false;
  private failure: StreamEnd | undefined;

  constructor(
    private readonly client: TaggedClient,
    private readonly userIds: string[],
    private readonly label: string,
  ) {
    this.open();
  }

  /** x-call-ids of every stream opened, in order. */
  get callIds(): string[] {
    return Array.from({ length: this.opened }, (_, i) => `${this.label}-${i}`);
  }

  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (this.failure !== undefined) throw new Error(`watch gave up on ${this.failure.code}: ${this.failure.details}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ends: ${JSON.stringify(this.ends)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): void {
    this.stopped = true;
    this.call?.cancel();
  }

  private open(): void {
    if (this.stopped) return;
    const callId = `${this.label}-${this.opened++}`;
    const call = this.client.watch(callId, { userIds: this.userIds, resumeToken: this.token });
    this.call = call;
    call.on("data", (m: WatchProfileEventsResponse) => {
      if (m.kind.case === "event") {
        this.events.push(m.kind.value);
        this.token = m.kind.value.resumeToken;
      } else if (m.kind.case === "bookmark") {
        this.bookmarks++;
        this.token = m.kind.value.resumeToken;
      }
    });
    call.on("error", (err: grpc.ServiceError) => {
      if (this.stopped) return;
      const end = { callId, code: err.code, details: err.details };
      this.ends.push(end);
      if (DO_NOT_RESUME.includes(err.code)) {
        this.failure = end;
        return;
      }
      setTimeout(() => this.open(), 50);
    });
    // A server stream never ends with OK on its own; if one did, resume all the same.
    call.on("status", (status: grpc.StatusObject) => {
      if (this.stopped || status.code !== grpc.status.OK) return;
      this.ends.push({ callId, code: status.code, details: status.details });
      setTimeout(() => this.open(), 50);
    });
  }
}
