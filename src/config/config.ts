// Configuration comes from the environment only, validated once at startup.

export interface Config {
  readonly nodeEnv: string;
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  readonly redisUrl: string | undefined;
  readonly redisCluster: boolean;
  readonly redisKeyPrefix: string;
  readonly redisTimeoutMs: number;
  readonly jwt: JwtConfig;
  readonly profileCacheTtlSeconds: number;
  readonly preferencesCacheTtlSeconds: number;
  readonly negativeCacheTtlSeconds: number;
  readonly cacheLeaseTtlMs: number;
  /** Entries in the optional in-process near cache; 0 (the default) turns it off. */
  readonly nearCacheMaxEntries: number;
  /** XFetch's beta; 0 (the default) turns early refresh off. */
  readonly earlyRefreshBeta: number;
  readonly nearCacheMaxAgeMs: number;
  readonly cacheLeaseWaitMs: number;
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
  // Production never falls back to the embedded parts: each must be configured.
  if (env.NODE_ENV === "production") {
    for (const name of ["DATABASE_URL", "REDIS_URL"]) {
      if (read.string(name) === undefined) throw new ConfigError(name, "is required when NODE_ENV=production");
    }
    if (jwt.secret === undefined && jwt.jwksUrl === undefined) {
      throw new ConfigError("JWT_SECRET", "JWT_SECRET or JWT_JWKS_URL is required when NODE_ENV=production");
    }
  }
  const certFile = read.string("TLS_CERT_FILE");
  const keyFile = read.string("TLS_KEY_FILE");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile === undefined ? "TLS_CERT_FILE" : "TLS_KEY_FILE", "TLS_CERT_FILE and TLS_KEY_FILE go together");
  }
  return {
    nodeEnv: env.NODE_ENV ?? "development",
    port: read.int("PORT", 50051, 0, 65535),
    host: read.string("HOST") ?? "0.0.0.0",
    databaseUrl: read.url("DATABASE_URL", ["postgres:", "postgresql:"]),
    redisUrl: read.url("REDIS_URL", ["redis:", "rediss:"]),
    redisCluster: read.bool("REDIS_CLUSTER", false),
    redisKeyPrefix: read.string("REDIS_KEY_PREFIX") ?? "",
    redisTimeoutMs: read.int("REDIS_TIMEOUT_MS", 100, 1, 60_000),
    jwt,
    profileCacheTtlSeconds: read.int("PROFILE_CACHE_TTL_SECONDS", 300, 1, 86_400 * 30),
    preferencesCacheTtlSeconds: read.int("PREFERENCES_CACHE_TTL_SECONDS", 600, 1, 86_400 * 30),
    negativeCacheTtlSeconds: read.int("NEGATIVE_CACHE_TTL_SECONDS", 30, 0, 86_400),
    earlyRefreshBeta: read.number("CACHE_EARLY_REFRESH_BETA", 0, 0, 1000),
    nearCacheMaxEntries: read.int("NEAR_CACHE_MAX_ENTRIES", 0, 0, 10_000_000),
    nearCacheMaxAgeMs: read.int("NEAR_CACHE_MAX_AGE_MS", 1000, 1, 600_000),
    cacheLeaseTtlMs: read.int("CACHE_LEASE_TTL_MS", 2000, 10, 60_000),
    cacheLeaseWaitMs: read.int("CACHE_LEASE_WAIT_MS", 3000, 0, 60_000),
    readMaxBytes: read.int("READ_MAX_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024),
    dbPoolSize: read.int("DB_POOL_SIZE", 20, 1, 1000),
    dbStatementTimeoutMs: read.int("DB_STATEMENT_TIMEOUT_MS", 5000, 100, 600_000),
    dbPreparedStatements: read.bool("DB_PREPARED_STATEMENTS", true),
    dataDir: read.string("DATA_DIR") ?? ".data",
    watchProgressIntervalSeconds: read.int("WATCH_PROGRESS_INTERVAL_SECONDS", 10, 1, 3600),
    watchQueueSize: read.int("WATCH_QUEUE_SIZE", 1000, 200, 1_000_000),
    eventRetentionHours: read.int("EVENT_RETENTION_HOURS", 24, 1, 24 * 365),
    eventPollIntervalMs: read.int("EVENT_POLL_INTERVAL_MS", 1000, 10, 600_000),
    eventRelayIntervalMs: read.int("EVENT_RELAY_INTERVAL_MS", 1000, 10, 600_000),
    eventRelayGraceMs: read.int("EVENT_RELAY_GRACE_MS", 5000, 0, 600_000),
    eventPruneIntervalSeconds: read.int("EVENT_PRUNE_INTERVAL_SECONDS", 600, 1, 86_400),
    shutdownGraceSeconds: read.int("SHUTDOWN_GRACE_SECONDS", 10, 0, 3600),
    warmup,
    tls: certFile === undefined || keyFile === undefined ? undefined : { certFile, keyFile },
    metricsPort: read.int("METRICS_PORT", 9464, 0, 65535),
    memoryCacheMaxBytes: read.int("MEMORY_CACHE_MAX_BYTES", 64 * 1024 * 1024, 1024 * 1024, 64 * 1024 * 1024 * 1024),
    logLevel: read.oneOf("LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"], "info"),
  };
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

  number(name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const value = Number(raw.trim());
    if (raw.trim() === "" || !Number.isFinite(value)) throw new ConfigError(name, `expected a number, got "${raw}"`);
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
