// Configuration comes from the environment only, validated once at startup.

import { availableParallelism } from "node:os";
import { parseSeedList, type RedisSentinelOptions } from "./redis-topology.js";

export interface Config {
  readonly nodeEnv: string;
  readonly port: number;
  /** Port for the Connect protocol and gRPC-Web (HTTP/1.1 and h2c, or TLS with ALPN). */
  readonly httpPort: number;
  /** Worker processes (node:cluster), each a full replica; 1 runs in this process. */
  readonly workers: number;
  /** gRPC port: a connection older than `maxMs` gets GOAWAY (0: never), then `graceMs` to finish its calls. */
  readonly connectionAge: { readonly maxMs: number; readonly graceMs: number };
  readonly host: string;
  readonly databaseUrl: string | undefined;
  /** One URL, or with `redisCluster` a comma-separated list of seed URLs. */
  readonly redisUrl: string | undefined;
  readonly redisCluster: boolean;
  /** Set instead of `redisUrl`: find the primary through these Sentinels. */
  readonly redisSentinel: RedisSentinelOptions | undefined;
  /** PEM file of the CA for rediss:// servers whose certificates no public CA signed. */
  readonly redisTlsCaFile: string | undefined;
  readonly redisKeyPrefix: string;
  readonly redisTimeoutMs: number;
  readonly jwt: JwtConfig;
  readonly profileCacheTtlSeconds: number;
  readonly preferencesCacheTtlSeconds: number;
  readonly negativeCacheTtlSeconds: number;
  readonly cacheLeaseTtlMs: number;
  readonly cacheLeaseWaitMs: number;
  /** How long values outlive their TTL as grace copies, served only while PostgreSQL is unreachable; 0 is off. */
  readonly cacheGraceSeconds: number;
  readonly readMaxBytes: number;
  readonly dbPoolSize: number;
  readonly dbStatementTimeoutMs: number;
  readonly dbPreparedStatements: boolean;
  readonly logLevel: string;
  readonly watchProgressIntervalSeconds: number;
  readonly watchQueueSize: number;
  readonly eventRetentionHours: number;
  readonly eventPollIntervalMs: number;
  readonly eventRelayIntervalMs: number;
  readonly eventRelayGraceMs: number;
  readonly eventPruneIntervalSeconds: number;
  readonly shutdownGraceSeconds: number;
  readonly warmup: WarmupConfig;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** Where the embedded default keeps its data and development secret. */
  readonly dataDir: string;
  /** Port of the Prometheus endpoint (GET /metrics); 0 picks a free one. */
  readonly metricsPort: number;
  /** Bound on the embedded in-process cache, in bytes of keys and values. */
  readonly memoryCacheMaxBytes: number;
  /** Per-connection and per-request bounds at the listener (see README "Limits"). */
  readonly serverLimits: ServerLimits;
  readonly watchLimits: WatchLimits;
  /** Browser origins allowed to call cross-origin (CORS); empty allows none. */
  readonly corsAllowedOrigins: readonly string[];
  /** How often Redis' maxmemory-policy and memory use are read (also once at startup). */
  readonly redisMemoryCheckIntervalMs: number;
  readonly consistency: ConsistencyConfig;
}

export interface ConsistencyConfig {
  /** How often the consistency checker samples cached keys; 0 (the default) turns it off. */
  readonly intervalMs: number;
  /** Users sampled per round from each source (recent writes, overdue invalidations, a random stretch of ids). */
  readonly sampleSize: number;
  /** A key whose newest write has not been invalidated yet is in flight for this long, and not counted. */
  readonly inFlightWindowMs: number;
}

export interface ServerLimits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: streams one connection may have open. */
  readonly maxConcurrentStreams: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the largest request header list, in bytes. */
  readonly maxHeaderListBytes: number;
  /** Open connections; at the cap the longest-idle one makes room, or the new one is refused. */
  readonly maxConnections: number;
  /** A connection with no open stream for this long is closed with GOAWAY. */
  readonly idleTimeoutMs: number;
  /** A connection must finish TLS and send the HTTP/2 preface within this. */
  readonly prefaceTimeoutMs: number;
  /** A request must have sent its whole body this long after its headers. */
  readonly requestBodyTimeoutMs: number;
  /** Streams a client may reset (or have reset) in a burst, then per second. */
  readonly streamResetBurst: number;
  readonly streamResetRate: number;
  /** A connection silent this long gets a PING; no ack within the timeout closes it. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /** The shortest interval between client PINGs (grpc-go's EnforcementPolicy.MinTime). */
  readonly keepaliveMinTimeMs: number;
  /** Whether client PINGs on a connection with no call are held to keepaliveMinTimeMs (true) or to two hours. */
  readonly keepalivePermitWithoutCalls: boolean;
}

export interface WatchLimits {
  /** Open WatchProfileEvents streams per connection. */
  readonly perConnection: number;
  /** Open WatchProfileEvents streams per caller (token subject), on this replica. */
  readonly perCaller: number;
}

export interface JwtConfig {
  readonly secret: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  readonly clockToleranceSeconds: number;
}

export interface WarmupConfig {
  /** How many profiles to warm at startup; 0 turns warm-up off. */
  readonly limit: number;
  readonly timeoutMs: number;
  readonly query: string | undefined;
  readonly databaseUrl: string | undefined;
}

/** A bad setting. The message is one line that names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const read = new EnvReader(env);
  const jwt: JwtConfig = {
    secret: read.string("JWT_SECRET"),
    jwksUrl: read.url("JWT_JWKS_URL", ["https:", "http:"]),
    issuer: read.string("JWT_ISSUER"),
    audience: read.string("JWT_AUDIENCE"),
    clockToleranceSeconds: read.int("JWT_CLOCK_TOLERANCE_SECONDS", 30, 0, 300),
  };
  if (jwt.secret !== undefined && jwt.jwksUrl !== undefined) {
    throw new ConfigError("JWT_JWKS_URL", "set JWT_SECRET or JWT_JWKS_URL, not both");
  }
  if (jwt.secret !== undefined && Buffer.byteLength(jwt.secret) < 32) {
    throw new ConfigError("JWT_SECRET", "must be at least 32 bytes for HS256");
  }
  const warmup: WarmupConfig = {
    limit: read.int("WARMUP_LIMIT", 1000, 0, 100_000),
    timeoutMs: read.int("WARMUP_TIMEOUT_MS", 5000, 1, 600_000),
    query: read.string("WARMUP_QUERY"),
    databaseUrl: read.url("WARMUP_DATABASE_URL", ["postgres:", "postgresql:"]),
  };
  if ((warmup.query === undefined) !== (warmup.databaseUrl === undefined)) {
    throw new ConfigError(
      warmup.query === undefined ? "WARMUP_QUERY" : "WARMUP_DATABASE_URL",
      "WARMUP_QUERY and WARMUP_DATABASE_URL go together",
    );
  }
  const redis = readRedis(read);
  // Production never falls back to the embedded parts: each must be configured.
  if (env.NODE_ENV === "production") {
    if (read.string("DATABASE_URL") === undefined) {
      throw new ConfigError("DATABASE_URL", "is required when NODE_ENV=production");
    }
    if (redis.redisUrl === undefined && redis.redisSentinel === undefined) {
      throw new ConfigError("REDIS_URL", "REDIS_URL or REDIS_SENTINELS is required when NODE_ENV=production");
    }
    if (jwt.secret === undefined && jwt.jwksUrl === undefined) {
      throw new ConfigError("JWT_SECRET", "JWT_SECRET or JWT_JWKS_URL is required when NODE_ENV=production");
    }
  }
  const certFile = read.string("TLS_CERT_FILE");
  const keyFile = read.string("TLS_KEY_FILE");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(
      certFile === undefined ? "TLS_CERT_FILE" : "TLS_KEY_FILE",
      "TLS_CERT_FILE and TLS_KEY_FILE go together",
    );
  }
  const workers = readWorkers(read);
  if (
    workers > 1 &&
    (env.DATABASE_URL === undefined || (redis.redisUrl === undefined && redis.redisSentinel === undefined))
  ) {
    throw new ConfigError(
      "WORKERS",
      "more than one worker needs DATABASE_URL and REDIS_URL (or REDIS_SENTINELS): the embedded database, cache and bus live in one process",
    );
  }
  return {
    nodeEnv: env.NODE_ENV ?? "development",
    port: read.int("PORT", 50051, 0, 65535),
    httpPort: read.int("HTTP_PORT", 8080, 0, 65535),
    workers,
    connectionAge: {
      maxMs: read.int("MAX_CONNECTION_AGE_SECONDS", 0, 0, 30 * 86_400) * 1000,
      graceMs: read.int("MAX_CONNECTION_AGE_GRACE_SECONDS", 30, 0, 86_400) * 1000,
    },
    host: read.string("HOST") ?? "0.0.0.0",
    databaseUrl: read.url("DATABASE_URL", ["postgres:", "postgresql:"]),
    ...redis,
    redisKeyPrefix: read.string("REDIS_KEY_PREFIX") ?? "",
    redisTimeoutMs: read.int("REDIS_TIMEOUT_MS", 100, 1, 60_000),
    jwt,
    profileCacheTtlSeconds: read.int("PROFILE_CACHE_TTL_SECONDS", 300, 1, 86_400 * 30),
    preferencesCacheTtlSeconds: read.int("PREFERENCES_CACHE_TTL_SECONDS", 600, 1, 86_400 * 30),
    negativeCacheTtlSeconds: read.int("NEGATIVE_CACHE_TTL_SECONDS", 30, 0, 86_400),
    cacheLeaseTtlMs: read.int("CACHE_LEASE_TTL_MS", 2000, 10, 60_000),
    cacheLeaseWaitMs: read.int("CACHE_LEASE_WAIT_MS", 3000, 0, 60_000),
    cacheGraceSeconds: read.int("CACHE_GRACE_SECONDS", 0, 0, 86_400 * 7),
    readMaxBytes: read.int("READ_MAX_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024),
    dbPoolSize: read.int("DB_POOL_SIZE", 20, 1, 1000),
    dbStatementTimeoutMs: read.int("DB_STATEMENT_TIMEOUT_MS", 5000, 100, 600_000),
    dbPreparedStatements: read.bool("DB_PREPARED_STATEMENTS", true),
    dataDir: read.string("DATA_DIR") ?? ".data",
    watchProgressIntervalSeconds: read.int("WATCH_PROGRESS_INTERVAL_SECONDS", 10, 1, 3600),
    watchQueueSize: read.int("WATCH_QUEUE_SIZE", 1000, 200, 1_000_000),
    eventRetentionHours: read.int("EVENT_RETENTION_HOURS", 24, 1, 24 * 365),
    eventPollIntervalMs: read.int("EVENT_POLL_INTERVAL_MS", 1000, 10, 600_000),
    // Their sum bounds how long a key can stay stale after a write whose writer died
    // before its DEL (README, "How the cache stays correct").
    eventRelayIntervalMs: read.int("EVENT_RELAY_INTERVAL_MS", 500, 10, 600_000),
    eventRelayGraceMs: read.int("EVENT_RELAY_GRACE_MS", 1000, 0, 600_000),
    eventPruneIntervalSeconds: read.int("EVENT_PRUNE_INTERVAL_SECONDS", 600, 1, 86_400),
    shutdownGraceSeconds: read.int("SHUTDOWN_GRACE_SECONDS", 10, 0, 3600),
    warmup,
    tls: certFile === undefined || keyFile === undefined ? undefined : { certFile, keyFile },
    metricsPort: read.int("METRICS_PORT", 9464, 0, 65535),
    memoryCacheMaxBytes: read.int("MEMORY_CACHE_MAX_BYTES", 64 * 1024 * 1024, 1024 * 1024, 64 * 1024 * 1024 * 1024),
    serverLimits: readServerLimits(read),
    watchLimits: {
      perConnection: read.int("WATCH_MAX_STREAMS_PER_CONNECTION", 100, 1, 100_000),
      perCaller: read.int("WATCH_MAX_STREAMS_PER_CALLER", 1000, 1, 1_000_000),
    },
    corsAllowedOrigins: read.origins("CORS_ALLOWED_ORIGINS"),
    redisMemoryCheckIntervalMs: read.int("REDIS_MEMORY_CHECK_INTERVAL_SECONDS", 60, 1, 86_400) * 1000,
    consistency: readConsistency(read),
    logLevel: read.oneOf("LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"], "info"),
  };
}

function readConsistency(read: EnvReader): ConsistencyConfig {
  const intervalMs = read.int("CONSISTENCY_CHECK_INTERVAL_MS", 0, 0, 86_400_000);
  // Each round is a query and a Redis read: more often than this would be load, not measurement.
  if (intervalMs > 0 && intervalMs < 100) {
    throw new ConfigError("CONSISTENCY_CHECK_INTERVAL_MS", `must be 0 (off) or at least 100, got ${intervalMs}`);
  }
  return {
    intervalMs,
    sampleSize: read.int("CONSISTENCY_CHECK_SAMPLE_SIZE", 10, 1, 1000),
    inFlightWindowMs: read.int("CONSISTENCY_IN_FLIGHT_WINDOW_MS", 5000, 0, 3_600_000),
  };
}

function readRedis(read: EnvReader): Pick<Config, "redisUrl" | "redisCluster" | "redisSentinel" | "redisTlsCaFile"> {
  const redisCluster = read.bool("REDIS_CLUSTER", false);
  const raw = read.string("REDIS_URL");
  const sentinels = read.string("REDIS_SENTINELS");
  const redisTlsCaFile = read.string("REDIS_TLS_CA_FILE");
  const password = read.string("REDIS_PASSWORD");
  const sentinelPassword = read.string("REDIS_SENTINEL_PASSWORD");
  const name = read.string("REDIS_SENTINEL_NAME");
  if (sentinels === undefined) {
    for (const [variable, value] of [
      ["REDIS_SENTINEL_NAME", name],
      ["REDIS_SENTINEL_PASSWORD", sentinelPassword],
      ["REDIS_PASSWORD", password],
    ] as const) {
      if (value !== undefined) {
        throw new ConfigError(
          variable,
          variable === "REDIS_PASSWORD"
            ? "goes with REDIS_SENTINELS; with REDIS_URL, put the password in the URL (redis://:password@host:port)"
            : "goes with REDIS_SENTINELS",
        );
      }
    }
  }
  if (sentinels !== undefined) {
    if (raw !== undefined) throw new ConfigError("REDIS_SENTINELS", "set REDIS_URL or REDIS_SENTINELS, not both");
    if (redisCluster) throw new ConfigError("REDIS_CLUSTER", "a Sentinel group is not a cluster");
    if (name === undefined) throw new ConfigError("REDIS_SENTINEL_NAME", "is required with REDIS_SENTINELS");
    if (redisTlsCaFile !== undefined) {
      throw new ConfigError("REDIS_TLS_CA_FILE", "TLS is not supported with REDIS_SENTINELS");
    }
    return {
      redisUrl: undefined,
      redisCluster,
      redisSentinel: { sentinels: parseHostPorts("REDIS_SENTINELS", sentinels), name, password, sentinelPassword },
      redisTlsCaFile,
    };
  }
  let redisUrl: string | undefined;
  if (raw !== undefined && raw.includes(",")) {
    if (!redisCluster) throw new ConfigError("REDIS_URL", "a list of URLs needs REDIS_CLUSTER=true");
    redisUrl = raw;
  } else {
    redisUrl = read.url("REDIS_URL", ["redis:", "rediss:"]);
  }
  if (redisUrl !== undefined && redisCluster) {
    try {
      parseSeedList(redisUrl);
    } catch (err) {
      throw new ConfigError("REDIS_URL", (err as Error).message);
    }
  }
  if (redisTlsCaFile !== undefined && !redisUrl?.startsWith("rediss:")) {
    throw new ConfigError("REDIS_TLS_CA_FILE", "goes with a rediss:// REDIS_URL");
  }
  return { redisUrl, redisCluster, redisSentinel: undefined, redisTlsCaFile };
}

function parseHostPorts(variable: string, list: string): { host: string; port: number }[] {
  return list.split(",").map((entry) => {
    const match = /^\s*(\[[^\]]+\]|[^:\s]+):(\d{1,5})\s*$/.exec(entry);
    const port = Number(match?.[2]);
    if (match === null || port < 1 || port > 65535) {
      throw new ConfigError(variable, `expected host:port entries separated by commas, got "${entry}"`);
    }
    return { host: match[1]!.replace(/^\[(.*)\]$/, "$1"), port };
  });
}

function readServerLimits(read: EnvReader): ServerLimits {
  const seconds = (name: string, fallback: number, min: number, max: number) =>
    read.int(name, fallback, min, max) * 1000;
  return {
    maxConcurrentStreams: read.int("HTTP2_MAX_CONCURRENT_STREAMS", 250, 1, 100_000),
    maxHeaderListBytes: read.int("HTTP2_MAX_HEADER_LIST_BYTES", 16 * 1024, 1024, 1024 * 1024),
    maxConnections: read.int("MAX_CONNECTIONS", 1000, 1, 1_000_000),
    idleTimeoutMs: seconds("CONNECTION_IDLE_TIMEOUT_SECONDS", 300, 1, 86_400),
    prefaceTimeoutMs: seconds("CONNECTION_PREFACE_TIMEOUT_SECONDS", 10, 1, 600),
    requestBodyTimeoutMs: seconds("REQUEST_BODY_TIMEOUT_SECONDS", 30, 1, 3600),
    streamResetBurst: read.int("HTTP2_STREAM_RESET_BURST", 250, 1, 1_000_000),
    streamResetRate: read.int("HTTP2_STREAM_RESET_RATE", 50, 1, 1_000_000),
    keepaliveTimeMs: seconds("HTTP2_KEEPALIVE_TIME_SECONDS", 60, 1, 86_400),
    keepaliveTimeoutMs: seconds("HTTP2_KEEPALIVE_TIMEOUT_SECONDS", 20, 1, 3600),
    keepaliveMinTimeMs: seconds("HTTP2_KEEPALIVE_MIN_TIME_SECONDS", 300, 1, 86_400),
    keepalivePermitWithoutCalls: read.bool("HTTP2_KEEPALIVE_PERMIT_WITHOUT_CALLS", false),
  };
}

/** WORKERS: a count, or `auto` for one per core this process may use. */
function readWorkers(read: EnvReader): number {
  if (read.string("WORKERS")?.trim().toLowerCase() === "auto") return availableParallelism();
  return read.int("WORKERS", 1, 1, 1024);
}

class EnvReader {
  constructor(private readonly env: Env) {}

  string(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value === "" ? undefined : value;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
    const value = Number(raw.trim());
    if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
    return value;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.string(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (["1", "true", "yes"].includes(raw)) return true;
    if (["0", "false", "no"].includes(raw)) return false;
    throw new ConfigError(name, `expected true or false, got "${raw}"`);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new ConfigError(name, `must be one of ${allowed.join(", ")}, got "${raw}"`);
    }
    return raw as T;
  }

  /** A comma-separated list of web origins (`https://app.example.com`), or `*` alone for any origin. */
  origins(name: string): readonly string[] {
    const raw = this.string(name);
    if (raw === undefined) return [];
    const entries = raw
      .split(",")
      .map((entry) => entry.trim())
      .filter((entry) => entry !== "");
    if (entries.includes("*")) {
      if (entries.length > 1) throw new ConfigError(name, "`*` allows every origin and cannot be combined with others");
      return ["*"];
    }
    return entries.map((entry) => {
      let parsed: URL;
      try {
        parsed = new URL(entry);
      } catch {
        throw new ConfigError(name, `"${entry}" is not an origin such as https://app.example.com`);
      }
      // An origin is scheme, host and port only; anything else would never match a browser's Origin header.
      if (!["http:", "https:"].includes(parsed.protocol) || parsed.origin !== entry.replace(/\/$/, "")) {
        throw new ConfigError(name, `"${entry}" is not an origin such as https://app.example.com`);
      }
      return parsed.origin;
    });
  }

  url(name: string, protocols: string[]): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new ConfigError(name, "is not a valid URL");
    }
    if (!protocols.includes(parsed.protocol)) {
      throw new ConfigError(name, `must use ${protocols.join(" or ")}, got ${parsed.protocol}`);
    }
    return raw;
  }
}
