import { Cluster, Redis, type RedisOptions } from "ioredis";

export interface RedisClientOptions {
  url: string;
  cluster: boolean;
  connectTimeoutMs?: number;
}

/**
 * A client tuned for a cache that must never slow a read down: commands fail
 * at once while disconnected (no offline queue) so reads fall back to
 * PostgreSQL, and commands issued together share one round trip.
 */
export function createRedisClient(options: RedisClientOptions): Redis | Cluster {
  const common: RedisOptions = {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
  };
  const client = options.cluster
    ? new Cluster([options.url], { enableAutoPipelining: true, enableOfflineQueue: false, redisOptions: common })
    : new Redis(options.url, common);
  // Without a listener a connection error would crash the process; outages are handled per command.
  client.on("error", () => {});
  return client;
}

/** Resolves when the client is ready or `timeoutMs` passed; serving starts either way. */
export function waitUntilReady(client: Redis | Cluster, timeoutMs: number): Promise<boolean> {
  if (client.status === "ready") return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off("ready", onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    client.once("ready", onReady);
  });
}
