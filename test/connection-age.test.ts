// MAX_CONNECTION_AGE_SECONDS on the gRPC port (grpc-js' max_connection_age):
// an old connection gets GOAWAY(NO_ERROR), so clients behind a connection
// balancer reconnect and spread out; its calls still finish.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import { ErrorCode, RawH2Connection } from "./support/h2-raw.js";
import { startTestService, type TestService } from "./support/service.js";

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({
    label: "connection_age",
    env: { MAX_CONNECTION_AGE_SECONDS: "1", MAX_CONNECTION_AGE_GRACE_SECONDS: "1" },
  });
});
afterAll(async () => {
  await svc?.close();
});

describe("MAX_CONNECTION_AGE_SECONDS", () => {
  it("is off by default, with a 30 s grace", () => {
    expect(loadConfig({}).connectionAge).toEqual({ maxMs: 0, graceMs: 30_000 });
  });

  it("sends a connection older than the age GOAWAY(NO_ERROR), then closes it after the grace", async () => {
    const c = await RawH2Connection.open(svc.port);
    try {
      await c.settled();
      // The age has a jitter of up to a tenth either way.
      await c.until((x) => x.goaways.length > 0, 3000, "GOAWAY for the connection's age");
      expect(c.goaways[0]!.code).toBe(ErrorCode.NO_ERROR);
      await c.until((x) => x.closed, 5000, "the connection to be closed after the grace");
    } finally {
      c.destroy();
    }
  });
});
