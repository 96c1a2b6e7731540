import type { Logger } from "./logger.js";

// Failure lines that come once per call (a Redis outage fails every read,
// write and publish) would otherwise flood the log: thousands of identical
// lines a second, burying everything else and costing CPU when it is short.
// Each kind of line is written once per interval; the rest are counted, and
// when the interval ends one more line with the same message says how many
// were left out (`suppressed`), with the fields of the latest of them.

export const REPEAT_INTERVAL_MS = 10_000;
// Keys are meant to come from a small fixed set (a message, an operation, a
// channel); this caps the bookkeeping should one ever carry more.
const MAX_KEYS = 1000;
const OVERFLOW_KEY = "(other keys)";

type Level = "warn" | "error";

interface Window {
  openedAt: number;
  suppressed: number;
  last: { level: Level; fields: object; msg: string } | undefined;
  timer: NodeJS.Timeout;
}

export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = REPEAT_INTERVAL_MS,
  ) {}

  warn(key: string, fields: object, msg: string): void {
    this.write("warn", key, fields, msg);
  }

  error(key: string, fields: object, msg: string): void {
    this.write("error", key, fields, msg);
  }

  private write(level: Level, key: string, fields: object, msg: string): void {
    if (!this.windows.has(key) && this.windows.size >= MAX_KEYS) key = OVERFLOW_KEY;
    const open = this.windows.get(key);
    if (open !== undefined) {
      open.suppressed++;
      open.last = { level, fields, msg };
      return;
    }
    this.log[level](fields, msg);
    this.open(key);
  }

  /** Writes what the open windows held back (at shutdown, so no count is lost). */
  flush(): void {
    for (const window of this.windows.values()) {
      clearTimeout(window.timer);
      this.report(window);
    }
    this.windows.clear();
  }

  private open(key: string): void {
    const openedAt = performance.now();
    const window: Window = { openedAt, suppressed: 0, last: undefined, timer: this.closeLater(key, openedAt) };
    this.windows.set(key, window);
  }

  // Timers run on the loop's whole-millisecond clock, so one may fire up to a
  // millisecond before performance.now() says the interval is over (CI saw a
  // 9,999 ms window of 10,000). A window that is still short waits out the
  // rest, so it always spans the whole interval it reports.
  private closeLater(key: string, openedAt: number): NodeJS.Timeout {
    const left = Math.max(1, Math.ceil(openedAt + this.intervalMs - performance.now()));
    return setTimeout(() => {
      const window = this.windows.get(key);
      if (window?.openedAt !== openedAt) return;
      if (performance.now() - window.openedAt < this.intervalMs) window.timer = this.closeLater(key, openedAt);
      else this.close(key, window);
    }, left).unref();
  }

  // A window with nothing held back just ends, so the next line goes out at
  // once; one that held lines back reports them and opens the next window,
  // so a failure that goes on costs one line per interval.
  private close(key: string, window: Window): void {
    this.windows.delete(key);
    if (this.report(window)) this.open(key);
  }

  private report(window: Window): boolean {
    if (window.last === undefined) return false;
    const { level, fields, msg } = window.last;
    const overMs = Math.round(performance.now() - window.openedAt);
    this.log[level]({ ...fields, suppressed: window.suppressed, suppressed_over_ms: overMs }, msg);
    return true;
  }
}

const shared = new WeakMap<Logger, RateLimitedLog>();

/** The rate limiter for `log`, one per logger, so every call site shares the windows of its keys. */
export function rateLimited(log: Logger): RateLimitedLog {
  let limiter = shared.get(log);
  if (limiter === undefined) {
    limiter = new RateLimitedLog(log);
    shared.set(log, limiter);
  }
  return limiter;
}
