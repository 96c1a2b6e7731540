import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { expectRefused } from "./support/config-error.js";

describe("configuration", () => {
  it("has the documented defaults", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 50051,
      profileCacheTtlSeconds: 300,
      preferencesCacheTtlSeconds: 600,
      redisTimeoutMs: 100,
      databaseUrl: undefined,
      redisUrl: undefined,
      metricsPort: 9464,
      memoryCacheMaxBytes: 64 * 1024 * 1024,
      cacheGraceSeconds: 0,
    });
    expect(loadConfig({ CACHE_GRACE_SECONDS: "3600" }).cacheGraceSeconds).toBe(3600);
  });

  it.each([
    ["PORT", "http"],
    ["PORT", "70000"],
    ["PROFILE_CACHE_TTL_SECONDS", "-5"],
    ["PREFERENCES_CACHE_TTL_SECONDS", "10m"],
    ["REDIS_TIMEOUT_MS", "0"],
    ["DATABASE_URL", "mysql://localhost/db"],
    ["REDIS_URL", "not a url"],
    ["JWT_SECRET", "short"],
    ["JWT_JWKS_URL", "ftp://keys"],
    ["LOG_LEVEL", "loud"],
    ["REDIS_CLUSTER", "maybe"],
    ["METRICS_PORT", "65536"],
    ["METRICS_PORT", "9464x"],
    ["MEMORY_CACHE_MAX_BYTES", "1000"],
    ["CACHE_GRACE_SECONDS", "-1"],
    ["CACHE_GRACE_SECONDS", "5m"],
    ["CACHE_GRACE_SECONDS", "604801"],
  ])("rejects %s=%s with a message naming the variable", (name, value) => {
    expect(expectRefused(name, value).message).not.toContain("\n");
  });

  it("has no silent fallbacks in production: every server and the JWT setting are required", () => {
    const full = {
      NODE_ENV: "production",
      DATABASE_URL: "postgres://db/profiles",
      REDIS_URL: "redis://cache:6379",
      JWT_SECRET: "x".repeat(32),
    };
    expect(loadConfig(full).databaseUrl).toBe("postgres://db/profiles");
    for (const [missing, named] of [
      ["DATABASE_URL", "DATABASE_URL"],
      ["REDIS_URL", "REDIS_URL"],
      ["JWT_SECRET", "JWT_SECRET"],
    ] as const) {
      const env: Record<string, string> = { ...full };
      delete env[missing];
      expect(() => loadConfig(env)).toThrow(new RegExp(`^${named}: .*required when NODE_ENV=production`));
    }
    expect(loadConfig({ ...full, JWT_SECRET: "", JWT_JWKS_URL: "https://auth/jwks.json" }).jwt.jwksUrl).toBeDefined();
  });

  it("refuses both a secret and a JWKS URL", () => {
    expect(() => loadConfig({ JWT_SECRET: "x".repeat(32), JWT_JWKS_URL: "https://auth/jwks.json" })).toThrow(
      ConfigError,
    );
  });

  it("stops the binary with one line naming the variable", () => {
    const result = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { ...process.env, PORT: "not-a-port" },
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split("\n")).toEqual([
      'profile-service: invalid configuration: PORT: expected a whole number, got "not-a-port"',
    ]);
  });
});
