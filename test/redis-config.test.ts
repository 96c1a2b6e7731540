// The Redis settings: a seed list for a cluster, Sentinel, and the TLS CA,
// validated at startup with one line naming the variable.

import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/config.js";

function rejection(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe("Redis configuration", () => {
  it("takes a comma-separated seed list for a cluster", () => {
    const config = loadConfig({
      REDIS_URL: "redis://:pw@10.0.0.1:7000, redis://:pw@10.0.0.2:7000",
      REDIS_CLUSTER: "true",
    });
    expect(config.redisUrl).toBe("redis://:pw@10.0.0.1:7000, redis://:pw@10.0.0.2:7000");
    expect(config.redisCluster).toBe(true);
  });

  it.each([
    [{ REDIS_URL: "redis://a:1,redis://b:2" }, "REDIS_URL", /needs REDIS_CLUSTER=true/],
    [{ REDIS_URL: "redis://a:1,rediss://b:2", REDIS_CLUSTER: "true" }, "REDIS_URL", /all use redis/],
    [{ REDIS_URL: "redis://:x@a:1,redis://:y@b:2", REDIS_CLUSTER: "true" }, "REDIS_URL", /same credentials/],
    [{ REDIS_URL: "redis://a:1,http://b:2", REDIS_CLUSTER: "true" }, "REDIS_URL", /redis: or rediss:/],
    [{ REDIS_URL: "redis://a:1/3", REDIS_CLUSTER: "true" }, "REDIS_URL", /database 0/],
    [{ REDIS_URL: "redis://a:1,not a url", REDIS_CLUSTER: "true" }, "REDIS_URL", /not a valid URL/],
    [{ REDIS_URL: "redis://a:1", REDIS_TLS_CA_FILE: "/ca.pem" }, "REDIS_TLS_CA_FILE", /rediss:/],
    [{ REDIS_SENTINELS: "s1:26379" }, "REDIS_SENTINEL_NAME", /required/],
    [{ REDIS_SENTINELS: "s1", REDIS_SENTINEL_NAME: "m" }, "REDIS_SENTINELS", /host:port/],
    [{ REDIS_SENTINELS: "s1:99999", REDIS_SENTINEL_NAME: "m" }, "REDIS_SENTINELS", /host:port/],
    [{ REDIS_SENTINELS: "s1:26379", REDIS_SENTINEL_NAME: "m", REDIS_URL: "redis://a" }, "REDIS_SENTINELS", /not both/],
    [
      { REDIS_SENTINELS: "s1:26379", REDIS_SENTINEL_NAME: "m", REDIS_CLUSTER: "true" },
      "REDIS_CLUSTER",
      /not a cluster/,
    ],
    [{ REDIS_SENTINEL_NAME: "m" }, "REDIS_SENTINEL_NAME", /goes with REDIS_SENTINELS/],
    [{ REDIS_URL: "redis://a", REDIS_PASSWORD: "pw" }, "REDIS_PASSWORD", /in the URL/],
  ])("rejects %j, naming %s", (env, variable, message) => {
    const err = rejection(env);
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain("\n");
  });

  it("never echoes a password from a bad seed list", () => {
    const err = rejection({ REDIS_URL: "redis://:hunter2@a:1,redis://:hunter2@b:bad", REDIS_CLUSTER: "true" });
    expect(err.message).not.toContain("hunter2");
  });

  it("takes Sentinels with the group name and both passwords", () => {
    const config = loadConfig({
      REDIS_SENTINELS: "s1:26379, [::1]:26380",
      REDIS_SENTINEL_NAME: "mymaster",
      REDIS_PASSWORD: "data",
      REDIS_SENTINEL_PASSWORD: "sentinel",
    });
    expect(config.redisUrl).toBeUndefined();
    expect(config.redisSentinel).toEqual({
      sentinels: [
        { host: "s1", port: 26379 },
        { host: "::1", port: 26380 },
      ],
      name: "mymaster",
      password: "data",
      sentinelPassword: "sentinel",
    });
  });

  it("accepts Sentinels instead of REDIS_URL in production", () => {
    const production = { NODE_ENV: "production", DATABASE_URL: "postgres://db/p", JWT_SECRET: "x".repeat(32) };
    expect(rejection(production).message).toMatch(/^REDIS_URL: REDIS_URL or REDIS_SENTINELS is required/);
    expect(
      loadConfig({ ...production, REDIS_SENTINELS: "s:26379", REDIS_SENTINEL_NAME: "m" }).redisSentinel,
    ).toBeDefined();
  });
});
