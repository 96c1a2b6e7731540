// Publishes events that committed but were never published: the writer
// crashed between COMMIT and PUBLISH, or Redis was down. Runs on every replica.

import { errorSummary, type Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { Outbox } from "./outbox.js";
import type { EventPublisher } from "./publisher.js";

export interface EventRelayOptions {
  intervalMs: number;
  /** Events younger than this are left to their writer. */
  graceMs: number;
  batchSize: number;
  retentionHours: number;
  pruneIntervalMs: number;
}

export class EventRelay {
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly outbox: Outbox,
    private readonly publisher: EventPublisher,
    private readonly options: EventRelayOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timers.push(
      setInterval(() => void this.runOnce(), this.options.intervalMs).unref(),
      setInterval(() => void this.prune(), this.options.pruneIntervalMs).unref(),
    );
  }

  /** Publishes everything overdue; resolves when done (or when this pass failed). */
  runOnce(): Promise<void> {
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return this.running;
  }

  async prune(): Promise<number> {
    try {
      const deleted = await this.outbox.prune(this.options.retentionHours);
      if (deleted > 0) this.log.info({ deleted }, "pruned events past retention");
      return deleted;
    } catch (err) {
      this.log.warn({ err: errorSummary(err) }, "pruning events failed");
      return 0;
    }
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.running;
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        const relayed = await this.outbox.relay(this.options.graceMs, this.options.batchSize, async (events) => {
          const published: string[] = [];
          // In order, stopping at the first failure, so Redis subscribers see a replica's relay in log order.
          for (const event of events) {
            if (!(await this.publisher.publish(event))) break;
            published.push(event.eventId);
          }
          return published;
        });
        this.metrics.eventsRelayed.inc(relayed);
        if (relayed < this.options.batchSize) return;
      }
    } catch (err) {
      this.log.warn({ err: errorSummary(err) }, "relaying events failed; retrying on the next pass");
    }
  }
}
