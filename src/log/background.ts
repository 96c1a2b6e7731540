import { errorSummary, type Logger } from "./logger.js";

/**
 * Starts work nobody waits for. Its failure is logged, never left to become
 * an unhandled rejection (which would take the process down).
 */
export function inBackground(task: Promise<unknown>, log: Logger, what: string): void {
  task.catch((err: unknown) => log.error({ err: errorSummary(err), task: what }, "background task failed"));
}
