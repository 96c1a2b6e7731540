// The listener's limits and CORS_ALLOWED_ORIGINS: documented defaults, and
// one-line errors naming the variable for values that cannot work.

import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import { expectRefused } from "./support/config-error.js";

describe("limit settings", () => {
  it("have the documented defaults", () => {
    const config = loadConfig({});
    expect(config.serverLimits).toEqual({
      maxConcurrentStreams: 250,
      maxHeaderListBytes: 16_384,
      maxConnections: 1000,
      idleTimeoutMs: 300_000,
      prefaceTimeoutMs: 10_000,
      requestBodyTimeoutMs: 30_000,
      streamResetBurst: 250,
      streamResetRate: 50,
      keepaliveTimeMs: 60_000,
      keepaliveTimeoutMs: 20_000,
      keepaliveMinTimeMs: 300_000,
      keepalivePermitWithoutCalls: false,
    });
    expect(config.watchLimits).toEqual({ perConnection: 100, perCaller: 1000 });
    expect(config.corsAllowedOrigins).toEqual([]);
  });

  it("reads each one from its variable", () => {
    const config = loadConfig({
      HTTP2_MAX_CONCURRENT_STREAMS: "10",
      HTTP2_MAX_HEADER_LIST_BYTES: "8192",
      MAX_CONNECTIONS: "50",
      CONNECTION_IDLE_TIMEOUT_SECONDS: "2",
      CONNECTION_PREFACE_TIMEOUT_SECONDS: "3",
      REQUEST_BODY_TIMEOUT_SECONDS: "4",
      HTTP2_STREAM_RESET_BURST: "5",
      HTTP2_STREAM_RESET_RATE: "6",
      HTTP2_KEEPALIVE_TIME_SECONDS: "7",
      HTTP2_KEEPALIVE_TIMEOUT_SECONDS: "8",
      HTTP2_KEEPALIVE_MIN_TIME_SECONDS: "9",
      HTTP2_KEEPALIVE_PERMIT_WITHOUT_CALLS: "true",
      WATCH_MAX_STREAMS_PER_CONNECTION: "11",
      WATCH_MAX_STREAMS_PER_CALLER: "12",
      CORS_ALLOWED_ORIGINS: "https://app.example.com, http://localhost:5173",
    });
    expect(config.serverLimits).toEqual({
      maxConcurrentStreams: 10,
      maxHeaderListBytes: 8192,
      maxConnections: 50,
      idleTimeoutMs: 2000,
      prefaceTimeoutMs: 3000,
      requestBodyTimeoutMs: 4000,
      streamResetBurst: 5,
      streamResetRate: 6,
      keepaliveTimeMs: 7000,
      keepaliveTimeoutMs: 8000,
      keepaliveMinTimeMs: 9000,
      keepalivePermitWithoutCalls: true,
    });
    expect(config.watchLimits).toEqual({ perConnection: 11, perCaller: 12 });
    expect(config.corsAllowedOrigins).toEqual(["https://app.example.com", "http://localhost:5173"]);
    expect(loadConfig({ CORS_ALLOWED_ORIGINS: "*" }).corsAllowedOrigins).toEqual(["*"]);
  });

  it.each([
    ["HTTP2_MAX_CONCURRENT_STREAMS", "0"],
    ["HTTP2_MAX_HEADER_LIST_BYTES", "100"],
    ["MAX_CONNECTIONS", "many"],
    ["CONNECTION_IDLE_TIMEOUT_SECONDS", "0"],
    ["CONNECTION_PREFACE_TIMEOUT_SECONDS", "1.5"],
    ["REQUEST_BODY_TIMEOUT_SECONDS", "-1"],
    ["HTTP2_STREAM_RESET_BURST", "0"],
    ["HTTP2_KEEPALIVE_TIME_SECONDS", "0"],
    ["HTTP2_KEEPALIVE_PERMIT_WITHOUT_CALLS", "sometimes"],
    ["WATCH_MAX_STREAMS_PER_CALLER", "0"],
    ["CORS_ALLOWED_ORIGINS", "app.example.com"],
    ["CORS_ALLOWED_ORIGINS", "https://app.example.com/path"],
    ["CORS_ALLOWED_ORIGINS", "ftp://app.example.com"],
    ["CORS_ALLOWED_ORIGINS", "*, https://app.example.com"],
  ])("rejects %s=%s with a message naming the variable", (name, value) => {
    expectRefused(name, value);
  });
});
