// At most `concurrency` tasks at once, a bounded, time-limited queue behind
// them, and a prompt refusal beyond that. Watch catch-up reads go through one,
// so a burst of resuming watchers takes a fixed share of the PostgreSQL pool
// and queues here (where waiting costs nothing) instead of in the pool, ahead
// of every ordinary call.

export class QueueFullError extends Error {
  constructor(readonly reason: "full" | "timeout") {
    super(reason === "full" ? "too many tasks waiting" : "waited too long for a turn");
    this.name = "QueueFullError";
  }
}

export interface BoundedConcurrencyOptions {
  concurrency: number;
  /** Tasks that may wait for a turn; one more is refused at once. */
  maxQueued: number;
  /** The longest a task waits for its turn before it is refused. */
  maxWaitMs: number;
}

interface Waiter {
  start(): void;
  timer: NodeJS.Timeout;
}

export class BoundedConcurrency {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private readonly options: BoundedConcurrencyOptions) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.concurrency) await this.turn();
    else this.running++;
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves once this caller holds a slot (counted in `running`). */
  private turn(): Promise<void> {
    if (this.waiting.length >= this.options.maxQueued) return Promise.reject(new QueueFullError("full"));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new QueueFullError("timeout"));
        }, this.options.maxWaitMs),
      };
      waiter.timer.unref();
      this.waiting.push(waiter);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter, so `running` stays as it is.
    if (next !== undefined) next.start();
    else this.running--;
  }
}
