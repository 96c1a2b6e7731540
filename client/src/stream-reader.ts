// Reads a grpc-js server stream one message at a time, only when asked. The
// stream stays in paused mode, so when the consumer is slow, grpc-js stops
// reading, HTTP/2 flow control stops the server, and the server's bounded
// queue (WATCH_QUEUE_SIZE) ends the stream with RESOURCE_EXHAUSTED rather than
// either side buffering without bound.

import type * as grpc from "@grpc/grpc-js";

/** The stream sent nothing for longer than the idle timeout. */
export class StreamIdleError extends Error {
  constructor(readonly idleMs: number) {
    super(`the stream sent nothing for ${idleMs} ms`);
    this.name = "StreamIdleError";
  }
}

export class StreamReader<T> {
  private error: Error | undefined;
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(private readonly call: grpc.ClientReadableStream<T>) {
    // Kept for the call's whole life: grpc-js emits "error" on a cancel too, and an
    // "error" event without a listener would crash the process.
    call.on("error", (err: Error) => {
      this.error = err;
      this.wake?.();
    });
    call.on("end", () => {
      this.ended = true;
      this.wake?.();
    });
    call.on("readable", () => this.wake?.());
  }

  /**
   * The next message, or undefined when the stream ended with OK. Throws the
   * stream's error once every message that arrived before it was read, a
   * StreamIdleError after `idleMs` without a message, or the signal's reason.
   */
  async next(idleMs: number, signal?: AbortSignal): Promise<T | undefined> {
    for (;;) {
      signal?.throwIfAborted();
      const message = this.call.read() as T | null;
      if (message !== null) return message;
      // grpc-js pushes the end before it emits the error: with nothing left to read, the error is final.
      if (this.error !== undefined) throw this.error;
      if (this.ended) return undefined;
      await this.changed(idleMs, signal);
    }
  }

  cancel(): void {
    this.call.cancel();
  }

  private changed(idleMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.wake = undefined;
        if (err === undefined) resolve();
        else reject(err);
      };
      const onAbort = () => done(signal!.reason as Error);
      const timer = setTimeout(() => done(new StreamIdleError(idleMs)), idleMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.wake = () => done();
    });
  }
}
