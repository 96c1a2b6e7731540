// Reads a grpc-js WatchProfileEvents stream into a queue the test can await.

import type { WatchProfileEventsResponse } from "../../gen/profile/v1/profile_pb.js";
import type { grpc } from "./grpc-client.js";

export class WatchStream {
  readonly received: WatchProfileEventsResponse[] = [];
  error: grpc.ServiceError | undefined;
  ended = false;
  private waiters: (() => void)[] = [];

  constructor(readonly call: grpc.ClientReadableStream<WatchProfileEventsResponse>) {
    call.on("data", (m: WatchProfileEventsResponse) => this.push(() => this.received.push(m)));
    call.on("error", (e: grpc.ServiceError) => this.push(() => (this.error = e)));
    call.on("end", () => this.push(() => (this.ended = true)));
  }

  get events() {
    return this.received.flatMap((m) => (m.kind.case === "event" ? [m.kind.value] : []));
  }

  get bookmarks() {
    return this.received.flatMap((m) => (m.kind.case === "bookmark" ? [m.kind.value] : []));
  }

  /** The last resume token seen, from an event or a bookmark. */
  get lastToken(): string {
    for (let i = this.received.length - 1; i >= 0; i--) {
      const kind = this.received[i]!.kind;
      if (kind.case === "event") return kind.value.resumeToken;
      if (kind.case === "bookmark") return kind.value.resumeToken;
    }
    return "";
  }

  /** Waits until `predicate` holds (checked on every message), or fails after `timeoutMs`. */
  async until(predicate: (s: this) => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (this.error !== undefined && !predicate(this)) {
        throw new Error(`stream failed while waiting for ${what}: ${this.error.code} ${this.error.details}`);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${what}; got ${this.received.length} messages`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  cancel(): void {
    this.call.cancel();
  }

  private push(apply: () => void): void {
    apply();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
