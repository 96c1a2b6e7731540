import { readFileSync } from "node:fs";
import { createApp } from "./app.js";
import { ConfigError, loadConfig, type Config } from "./config/config.js";
import { createLogger, errorSummary } from "./log/logger.js";
import { listen } from "./server/http2-server.js";

async function main(): Promise<void> {
  let config;
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
  log.info({ port: server.port }, "profile-service listening");
  // Serving starts cold and warms in the background, so warm-up never delays it.
  void app.warmUp();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    const graceMs = config.shutdownGraceSeconds * 1000;
    // Whatever happens below, the process exits within the grace period (plus a margin).
    setTimeout(() => process.exit(1), graceMs + 2000).unref();
    await app.endStreams(Math.min(graceMs, 2000));
    await server.close(graceMs);
    await app.close();
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
