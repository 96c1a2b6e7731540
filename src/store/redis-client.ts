import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../log/logger.js";
import { TlsConnector } from "./redis-tls-connector.js";
import { withTimeout } from "../lib/timeout.js";
import { parseSeedList, type RedisSentinelOptions, type SeedList } from "../config/redis-topology.js";

export interface RedisClientOptions {
  /** A redis:// or rediss:// URL; for a cluster, a comma-separated list of seed URLs. Unused with `sentinel`. */
  url?: string;
  cluster?: boolean;
  sentinel?: RedisSentinelOptions;
  /** PEM of the CA that signed the servers' certificates, for rediss:// without a public CA. */
  tlsCa?: string | Buffer;
  connectTimeoutMs?: number;
  /** Told once per server that rejects our credentials (the cache is bypassed there). */
  log?: Logger;
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
  const client = options.sentinel
    ? sentinelClient(options.sentinel, common)
    : options.cluster
      ? clusterClient(parseSeedList(required(options.url)), common, options.tlsCa)
      : new Redis(required(options.url), tlsFor(required(options.url), options.tlsCa, common));
  watchCredentials(client, options.log);
  return client;
}

function required(url: string | undefined): string {
  if (url === undefined) throw new Error("a Redis URL or Sentinel options are required");
  return url;
}

function tlsFor(url: string, ca: string | Buffer | undefined, common: RedisOptions): RedisOptions {
  return url.startsWith("rediss:")
    ? { ...common, tls: ca === undefined ? {} : { ca }, Connector: TlsConnector }
    : common;
}

// ioredis applies a seed URL's password to that seed alone: every other node
// would answer NOAUTH. AUTH and TLS therefore go in redisOptions, which every
// node connection (and the cluster's subscriber) is made with.
function clusterClient(seeds: SeedList, common: RedisOptions, ca: string | Buffer | undefined): Cluster {
  return new Cluster(seeds.nodes, {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    redisOptions: {
      ...common,
      username: seeds.username,
      password: seeds.password,
      ...(seeds.tls ? { tls: ca === undefined ? {} : { ca }, Connector: TlsConnector } : {}),
    },
    // With TLS, connect to seeds by the name given, not the address it resolves
    // to, so that a certificate issued for that name verifies.
    ...(seeds.tls ? { dnsLookup: keepHostname } : {}),
  });
}

const keepHostname = (hostname: string, callback: (err: null, address: string) => void) => callback(null, hostname);

// ioredis asks the Sentinels for the current primary on every (re)connect, so
// a failover is followed by reconnecting; READONLY (we reached a primary that
// has been demoted while still reachable) forces a reconnect too. ioredis'
// `failoverDetector` is left off on purpose: a +switch-master that arrives
// while a reconnect is asking the Sentinels makes that connect fail with
// "Connection is closed", and the client then never reconnects (seen in
// test/redis-sentinel.test.ts, ioredis 5.9.3).
function sentinelClient(sentinel: RedisSentinelOptions, common: RedisOptions): Redis {
  return new Redis({
    ...common,
    sentinels: sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: sentinel.name,
    role: "master",
    password: sentinel.password,
    sentinelPassword: sentinel.sentinelPassword,
    sentinelRetryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    reconnectOnError: (err) => err.message.startsWith("READONLY"),
  });
}

const CREDENTIALS_REJECTED = /NOAUTH|WRONGPASS|invalid password|invalid username-password/i;

/**
 * Connection errors are handled per command (reads fall back, writes are
 * counted), but a rejected password never heals by itself and looks like a
 * slow cache in the counters. It is logged once per server, loudly.
 */
function watchCredentials(client: Redis | Cluster, log: Logger | undefined): void {
  const told = new Set<string>();
  const check = (err: unknown, address: string) => {
    const message = err instanceof Error ? err.message : String(err);
    if (log === undefined || told.has(address) || !CREDENTIALS_REJECTED.test(message)) return;
    told.add(address);
    log.error(
      { redis: address, err: message.split("\n")[0] },
      "Redis rejected our credentials: the cache and events are bypassed on this server until REDIS_URL (or REDIS_PASSWORD) is fixed",
    );
  };
  // Without a listener a connection error would crash the process; outages are handled per command.
  client.on("error", (err: unknown) => check(err, describe(client)));
  if (client.isCluster) client.on("node error", (err: unknown, address: string) => check(err, address));
}

function describe(client: Redis | Cluster): string {
  if (client.isCluster) return "cluster";
  const { host, port, sentinels, name } = (client as Redis).options;
  return sentinels ? `sentinel group ${name}` : `${host}:${port}`;
}

/** Resolves when the client is ready or `timeoutMs` passed; serving starts either way. */
export async function waitUntilReady(client: Redis | Cluster, timeoutMs: number): Promise<boolean> {
  if (client.status === "ready") return true;
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => client.once("ready", (onReady = resolve)));
  try {
    return await withTimeout(
      ready.then(() => true),
      timeoutMs,
      () => false,
    );
  } finally {
    client.off("ready", onReady);
  }
}
