import { readFileSync } from "node:fs";
import { createApp } from "./app.js";
import { ConfigError, loadConfig, type Config } from "./config/config.js";
import { createLogger, errorSummary } from "./log/logger.js";
import { listenMetrics } from "./metrics/metrics-server.js";
import { startDatabaseProbe } from "./server/database-probe.js";
import { devBanner, ensureDemoProfile } from "./server/dev-banner.js";
import { listen } from "./server/http2-server.js";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`profile-service: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const app = await createApp({ config, log });
  const server = await listen(app.handler, config.port, config.host, readTls(config));
  const metricsServer = await listenMetrics(app.metrics.registry, config.metricsPort, config.host);
  const probe = startDatabaseProbe(app.stores.db, app.health, {
    onChange: (up) => (up ? log.info("database reachable: SERVING") : log.error("database unreachable: NOT_SERVING")),
  });
  log.info({ port: server.port, metrics_port: metricsServer.port }, "profile-service listening");
  if (app.embedded.database || app.embedded.cache || app.embedded.devSecret !== undefined) {
    if (app.embedded.database) await ensureDemoProfile(app);
    process.stdout.write(await devBanner(app, server.port));
  }
  // Serving starts cold and warms in the background, so warm-up never delays it.
  void app.warmUp();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const graceMs = config.shutdownGraceSeconds * 1000;
    const deadline = Date.now() + graceMs;
    log.info({ signal, grace_ms: graceMs }, "shutting down");
    // Whatever happens below, the process is gone shortly after the grace period.
    setTimeout(() => process.exit(1), graceMs + 2000).unref();
    // 1. Load balancers and health-checking clients stop sending work here.
    app.health.shutdown();
    probe.stop();
    // 2. Watch streams get a final bookmark, then UNAVAILABLE, so they resume elsewhere.
    await app.endStreams(Math.min(2000, graceMs / 2));
    // 3. No new connections or streams (GOAWAY); in-flight unary calls finish.
    //    Those still running near the deadline answer UNAVAILABLE, never INTERNAL.
    const abortTimer = setTimeout(() => app.abortInFlight(), Math.max(0, deadline - Date.now() - 500));
    await server.close(Math.max(0, deadline - Date.now()));
    clearTimeout(abortTimer);
    // 4. Pools and background work; a query stuck on a lock must not hold the exit.
    await metricsServer.close();
    await Promise.race([app.close(), new Promise((resolve) => setTimeout(resolve, Math.max(500, deadline - Date.now())))]);
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
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
