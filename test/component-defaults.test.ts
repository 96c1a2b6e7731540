// Each component exports its defaults next to its class, and the environment
// has defaults of its own (src/config/config.ts, documented in the README).
// They must say the same, or a component built without a setting (a test,
// a tool) would behave unlike the service.

import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import { EVENT_RELAY_DEFAULTS } from "../src/events/relay.js";
import { WATCH_HUB_DEFAULTS } from "../src/events/watch-hub.js";
import { CACHE_ASIDE_DEFAULTS } from "../src/cache/cache-aside.js";
import { PROFILES_DEFAULTS } from "../src/profiles/profiles.js";

const config = loadConfig({});

describe("the environment's defaults", () => {
  it("are the seed's cache TTLs, as Profiles has them", () => {
    expect({
      profileTtlSeconds: config.profileCacheTtlSeconds,
      preferencesTtlSeconds: config.preferencesCacheTtlSeconds,
    }).toEqual(PROFILES_DEFAULTS);
  });

  it("are the relay's", () => {
    expect({
      intervalMs: config.eventRelayIntervalMs,
      graceMs: config.eventRelayGraceMs,
      retentionHours: config.eventRetentionHours,
      pruneIntervalMs: config.eventPruneIntervalSeconds * 1000,
    }).toEqual({
      intervalMs: EVENT_RELAY_DEFAULTS.intervalMs,
      graceMs: EVENT_RELAY_DEFAULTS.graceMs,
      retentionHours: EVENT_RELAY_DEFAULTS.retentionHours,
      pruneIntervalMs: EVENT_RELAY_DEFAULTS.pruneIntervalMs,
    });
  });

  it("are the watch hub's", () => {
    expect({
      pollIntervalMs: config.eventPollIntervalMs,
      progressIntervalMs: config.watchProgressIntervalSeconds * 1000,
      queueSize: config.watchQueueSize,
    }).toEqual({
      pollIntervalMs: WATCH_HUB_DEFAULTS.pollIntervalMs,
      progressIntervalMs: WATCH_HUB_DEFAULTS.progressIntervalMs,
      queueSize: WATCH_HUB_DEFAULTS.queueSize,
    });
  });

  it("are the cache-aside's", () => {
    expect({
      leaseTtlMs: config.cacheLeaseTtlMs,
      leaseWaitMs: config.cacheLeaseWaitMs,
      negativeTtlSeconds: config.negativeCacheTtlSeconds,
    }).toEqual({
      leaseTtlMs: CACHE_ASIDE_DEFAULTS.leaseTtlMs,
      leaseWaitMs: CACHE_ASIDE_DEFAULTS.leaseWaitMs,
      negativeTtlSeconds: CACHE_ASIDE_DEFAULTS.negativeTtlSeconds,
    });
  });
});
