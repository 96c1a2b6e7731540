// Starts the real service in-process on a free port, against real servers,
// with its own database and key prefix, plus clients to call it.

import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { ProfileService } from "../../gen/profile/v1/profile_pb.js";
import { createApp, type App, type AppOptions } from "../../src/app.js";
import { loadConfig } from "../../src/config/config.js";
import { createLogger } from "../../src/log/logger.js";
import { cacheKeys, type CacheKeys } from "../../src/cache/cache-keys.js";
import { listenGrpc } from "../../src/server/grpc-listener.js";
import { listen, type ListeningServer, type TlsFiles } from "../../src/server/http2-server.js";
import { createTestDatabase, testRedisUrl, uniqueKeyPrefix, type TestDatabase } from "./servers.js";
import { grpc as grpcJs, grpcProfileClient, type GrpcProfileClient } from "./grpc-client.js";

const grpcCredentials = grpcJs.credentials;
import { TEST_JWT_SECRET } from "./tokens.js";

export interface TestServiceOptions {
  label: string;
  /** Extra environment, as the binary would read it. */
  env?: Record<string, string>;
  /** Share a database (and prefix) with another instance. */
  database?: TestDatabase;
  keyPrefix?: string;
  redisUrl?: string;
  decorateStores?: AppOptions["decorateStores"];
  maxTrackedFailures?: AppOptions["maxTrackedFailures"];
  tls?: TlsFiles;
  /** The service's logger (say, a captured one); by default one at TEST_LOG_LEVEL. */
  log?: AppOptions["log"];
}

export interface TestService {
  readonly app: App;
  /** The gRPC port (grpc-js). */
  readonly port: number;
  /** The Connect and gRPC-Web port (Connect-ES). */
  readonly httpPort: number;
  /** The Connect port's URL. */
  readonly baseUrl: string;
  readonly database: TestDatabase;
  readonly keyPrefix: string;
  readonly keys: CacheKeys;
  readonly grpc: GrpcProfileClient;
  readonly connect: Client<typeof ProfileService>;
  /** A plain Redis connection for inspecting keys. */
  readonly redis: Redis;
  /** Closes this instance (and drops its database unless it was shared in). */
  close(): Promise<void>;
}

export async function startTestService(options: TestServiceOptions): Promise<TestService> {
  const ownsDatabase = options.database === undefined;
  const database = options.database ?? (await createTestDatabase(options.label));
  const keyPrefix = options.keyPrefix ?? uniqueKeyPrefix(options.label);
  const redisUrl = options.redisUrl ?? testRedisUrl;
  const config = loadConfig({
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: keyPrefix,
    JWT_SECRET: TEST_JWT_SECRET,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    DB_POOL_SIZE: "5",
    ...options.env,
  });
  const log = options.log ?? createLogger(config.logLevel);
  const app = await createApp({
    config,
    log,
    decorateStores: options.decorateStores,
    maxTrackedFailures: options.maxTrackedFailures,
  });
  let server: ListeningServer;
  let httpServer: ListeningServer;
  try {
    server = await listenGrpc(app.grpc.server, app.grpc.calls, 0, "127.0.0.1", {
      tls: options.tls,
      limits: config.serverLimits,
      log,
    });
    httpServer = await listen(app.handler, 0, "127.0.0.1", {
      tls: options.tls,
      limits: config.serverLimits,
      corsAllowedOrigins: config.corsAllowedOrigins,
      http1: true,
      log,
    });
  } catch (err) {
    await app.close();
    throw err;
  }
  const baseUrl = `${options.tls ? "https" : "http"}://127.0.0.1:${httpServer.port}`;
  const grpc = grpcProfileClient(
    `127.0.0.1:${server.port}`,
    options.tls ? grpcCredentials.createSsl(options.tls.cert) : undefined,
  );
  const connect = createClient(
    ProfileService,
    createConnectTransport({
      baseUrl,
      httpVersion: "2",
      nodeOptions: options.tls ? { ca: options.tls.cert } : undefined,
    }),
  );
  const redis = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  return {
    app,
    port: server.port,
    httpPort: httpServer.port,
    baseUrl,
    database,
    keyPrefix,
    keys: cacheKeys(keyPrefix),
    grpc,
    connect,
    redis,
    async close() {
      grpc.close();
      redis.disconnect();
      await Promise.all([server.close(1000), httpServer.close(1000)]);
      await app.close();
      if (ownsDatabase) await database.drop();
    },
  };
}

export function randomUserId(): string {
  return crypto.randomUUID();
}
