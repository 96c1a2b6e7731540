// A value that is costly to read, read at most once per `maxAgeMs` and never
// for longer than `timeoutMs`: scrapes share one read, and a slow or failed
// read leaves the value unknown instead of failing or stalling the scrape.

import { withTimeout } from "../lib/timeout.js";

export class RefreshedValue<T> {
  private value: T | undefined;
  private readAt = -Infinity;
  private inFlight: Promise<T | undefined> | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly timeoutMs: number,
  ) {}

  get(): Promise<T | undefined> {
    if (performance.now() - this.readAt < this.maxAgeMs) return Promise.resolve(this.value);
    this.inFlight ??= this.refresh().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async refresh(): Promise<T | undefined> {
    this.value = await unknownAfter(this.read(), this.timeoutMs);
    this.readAt = performance.now();
    return this.value;
  }
}

/** The promise's value, or undefined if it rejects or takes longer than `timeoutMs`. */
export function unknownAfter<T>(promise: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  return withTimeout(
    promise.catch(() => undefined),
    timeoutMs,
    () => undefined,
  );
}
