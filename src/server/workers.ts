// WORKERS > 1: node:cluster workers, each a replica in every sense (its own
// pools, relay, watch hub and Redis subscription), sharing the ports. The
// primary only forks them, hands signals on, serves their metrics summed
// (prom-client's AggregatorRegistry) on METRICS_PORT, and exits once they
// have all drained.

import cluster from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";
import type { Logger } from "../log/logger.js";
import { listenMetrics } from "../metrics/metrics-server.js";

/** Set by the primary in each worker's environment: the metrics port it serves for them. */
const PRIMARY_METRICS_PORT = "PROFILE_SERVICE_PRIMARY_METRICS_PORT";
/** A worker that dies this soon after it started is not restarted (a crash loop: bad config, no database). */
const MIN_WORKER_LIFE_MS = 10_000;

export function isWorker(): boolean {
  return cluster.isWorker;
}

/** In a worker: answers the primary's metrics requests from `registry`; returns the port the primary serves. */
export function reportMetricsToPrimary(registry: Registry): number {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one installs the worker's listener for the primary's requests.
  new AggregatorRegistry();
  return Number(process.env[PRIMARY_METRICS_PORT]);
}

export async function runPrimary(workers: number, metricsPort: number, host: string, log: Logger): Promise<void> {
  const aggregator = new AggregatorRegistry();
  const metrics = await listenMetrics(
    { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType },
    metricsPort,
    host,
  );
  let stopping = false;
  let exitCode = 0;
  const startedAt = new Map<number, number>();
  const fork = () => {
    const worker = cluster.fork({ [PRIMARY_METRICS_PORT]: String(metrics.port) });
    startedAt.set(worker.id, Date.now());
  };
  cluster.on("exit", (worker, code, signal) => {
    if (code !== 0) exitCode = 1;
    const lived = Date.now() - (startedAt.get(worker.id) ?? 0);
    if (!stopping && lived >= MIN_WORKER_LIFE_MS) {
      log.error({ pid: worker.process.pid, code, signal }, "worker exited; starting another");
      fork();
      return;
    }
    if (!stopping) {
      log.error({ pid: worker.process.pid, code, signal }, "worker exited during startup; stopping");
      stop("SIGTERM");
    }
    if (Object.keys(cluster.workers ?? {}).length === 0) {
      metrics
        .close()
        .catch(() => {})
        .finally(() => process.exit(exitCode));
    }
  });
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping workers");
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  for (let i = 0; i < workers; i++) fork();
  log.info({ workers, metrics_port: metrics.port }, "profile-service primary started");
}
