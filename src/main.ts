import { readFileSync } from "node:fs";
import { createApp } from "./app.js";
import { ConfigError, loadConfig, type Config } from "./config/config.js";
import { inBackground } from "./log/background.js";
import { createLogger, errorSummary } from "./log/logger.js";
import { rateLimited } from "./log/rate-limited.js";
import { listenMetrics } from "./metrics/metrics-server.js";
import { startDatabaseProbe } from "./server/database-probe.js";
import { ensureDemoProfile } from "./profiles/demo-profile.js";
import { devBanner } from "./server/dev-banner.js";
import { listenGrpc } from "./server/grpc-listener.js";
import { listen } from "./server/http2-server.js";
import { installProcessGuards } from "./server/process-guards.js";
import { isWorker, reportMetricsToPrimary, runPrimary } from "./server/workers.js";
import { startTracing } from "./tracing/start.js";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    refuseBadConfig(err);
  }
  const log = createLogger(config.logLevel);
  if (config.workers > 1 && !isWorker()) {
    await runPrimary(config.workers, config.metricsPort, config.host, log);
    return;
  }
  // Before the app, so its drivers are instrumented; off (and nothing loaded) without OTEL_EXPORTER_OTLP_ENDPOINT.
  const tracing = await startTracing(process.env, log).catch(refuseBadConfig);
  const app = await createApp({ config, log });
  installProcessGuards(log, app.metrics.unhandledRejections);
  // Before the port opens, so a signal never meets a startup step still writing.
  if (app.embedded.database) await ensureDemoProfile(app);
  const tls = readTls(config);
  // gRPC on PORT (grpc-js); Connect and gRPC-Web on HTTP_PORT (Connect-ES, HTTP/1.1 and HTTP/2).
  const server = await listenGrpc(app.grpc.server, app.grpc.calls, config.port, config.host, {
    tls,
    limits: config.serverLimits,
    log,
  });
  const httpServer = await listen(app.handler, config.httpPort, config.host, {
    tls,
    limits: config.serverLimits,
    corsAllowedOrigins: config.corsAllowedOrigins,
    http1: true,
    log,
  });
  // In a worker, the primary serves every worker's metrics, summed.
  const metricsServer = isWorker()
    ? { port: reportMetricsToPrimary(app.metrics.registry), close: async () => {} }
    : await listenMetrics(app.metrics.registry, config.metricsPort, config.host);
  const probe = startDatabaseProbe(app.stores.db, app.health, {
    onChange: (up) => (up ? log.info("database reachable: SERVING") : log.error("database unreachable: NOT_SERVING")),
  });
  // Before anyone learns that the port is up: from here on a signal drains instead of killing.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const at = shutdownSchedule(config.shutdownGraceSeconds * 1000);
    const started = performance.now();
    const until = (offsetMs: number) => Math.max(0, started + offsetMs - performance.now());
    log.info({ signal, grace_ms: at.graceMs }, "shutting down");
    // A backstop inside the grace, for a step below that hangs despite its own bound.
    setTimeout(() => {
      log.error({ grace_ms: at.graceMs }, "shutdown overran its schedule; exiting now");
      process.exit(1);
    }, at.backstopMs).unref();
    // 1. Load balancers and health-checking clients stop sending work here.
    app.health.shutdown();
    probe.stop();
    // 2. Watch streams get a final bookmark, then UNAVAILABLE, so they resume elsewhere.
    await app.endStreams(at.streamsMs);
    // 3. No new connections or streams (GOAWAY); in-flight unary calls finish.
    //    Those still running near the end answer UNAVAILABLE, never INTERNAL,
    //    and are given a moment to reach the client before sessions are cut.
    const abortTimer = setTimeout(() => app.abortInFlight(), until(at.abortMs));
    await Promise.all([server.close(until(at.destroyMs)), httpServer.close(until(at.destroyMs))]);
    clearTimeout(abortTimer);
    // 4. Pools and background work; a query stuck on a lock must not hold the exit.
    await Promise.race([
      Promise.allSettled([metricsServer.close(), app.close().then(() => tracing?.shutdown())]),
      new Promise((resolve) => setTimeout(resolve, until(at.exitMs))),
    ]);
    rateLimited(log).flush();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => inBackground(stop("SIGTERM"), log, "shutdown"));
  process.on("SIGINT", () => inBackground(stop("SIGINT"), log, "shutdown"));
  log.info(
    { port: server.port, http_port: httpServer.port, metrics_port: metricsServer.port, pid: process.pid },
    "profile-service listening",
  );
  if (app.embedded.database || app.embedded.cache || app.embedded.devSecret !== undefined) {
    process.stdout.write(await devBanner(app, server.port, httpServer.port));
  }
  // Serving starts cold and warms in the background, so warm-up never delays it.
  inBackground(app.warmUp(), log, "warm-up");
}

function refuseBadConfig(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`profile-service: invalid configuration: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

/**
 * When each shutdown step must be done, in ms after the signal. The grace is a
 * promise to whoever sent the signal (a container runtime kills the process
 * soon after), so the exit is planned before its end: a tenth of it, between
 * 250 and 500 ms (but never over a quarter), is left for the exit itself and
 * for timers that fire late on a busy machine.
 */
function shutdownSchedule(graceMs: number) {
  const reserveMs = Math.min(graceMs / 4, Math.max(250, Math.min(500, graceMs / 10)));
  const exitMs = graceMs - reserveMs;
  return {
    graceMs,
    streamsMs: Math.min(2000, graceMs / 4),
    abortMs: exitMs - reserveMs,
    destroyMs: exitMs - reserveMs / 2,
    exitMs,
    backstopMs: exitMs + reserveMs / 2,
  };
}

function readTls(config: Config) {
  if (config.tls === undefined) return undefined;
  try {
    return { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
  } catch (err) {
    throw new ConfigError("TLS_CERT_FILE", `cannot read the certificate or key: ${errorSummary(err)}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`profile-service: failed to start: ${errorSummary(err)}\n`);
  process.exit(1);
});
