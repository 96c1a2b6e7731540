// How far behind this process's event loop is running. A Redis reply that sits
// unread because our own loop is saturated is not a slow Redis, so the Redis
// timeout stretches by the current lag instead of sending reads to PostgreSQL
// (and a stampede past the leases) exactly when the process is busiest.

const TICK_MS = 10;

class EventLoopLag {
  private lagMs = 0;
  private last = performance.now();
  private timer: NodeJS.Timeout | undefined;

  /** Recent lag in milliseconds, decaying once the loop catches up. */
  current(): number {
    this.timer ??= setInterval(() => this.tick(), TICK_MS).unref();
    // A loop blocked right now has not ticked: count the time since the last tick too.
    return Math.max(this.lagMs, performance.now() - this.last - TICK_MS);
  }

  private tick(): void {
    const now = performance.now();
    const lag = Math.max(0, now - this.last - TICK_MS);
    this.last = now;
    this.lagMs = Math.max(lag, this.lagMs * 0.8);
  }
}

export const eventLoopLag = new EventLoopLag();
