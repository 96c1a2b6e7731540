// gRPC keepalive as grpc-go servers enforce it, seen from outside: client
// pings faster than the policy allows end in GOAWAY(ENHANCE_YOUR_CALM,
// "too_many_pings"); pings that follow our data (BDP pings) are fine; the
// service pings connections that have gone quiet and drops those that no
// longer answer.

import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WatchProfileEventsRequestSchema } from "../gen/profile/v1/profile_pb.js";
import type { ChildService } from "./support/child-service.js";
import { startEdgeService } from "./support/edge-service.js";
import { connectH2, grpcFrame, h2Grpc } from "./support/h2-grpc.js";
import { ErrorCode, FrameType, grpcData, grpcHeaders, headersFrames, ping, RawH2Connection } from "./support/h2-raw.js";
import { createTestDatabase, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

const WATCH = "/grpc.health.v1.Health/Watch";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase("keepalive");
});
afterAll(async () => {
  await database?.drop();
});

/** A raw connection with a quiet server stream open (Health/Watch sends one message, then waits). */
async function withWatch(port: number, ackPings = true): Promise<RawH2Connection> {
  const c = await RawH2Connection.open(port, { ackPings });
  c.write(headersFrames(1, grpcHeaders(WATCH), false));
  c.write(grpcData(1, Buffer.alloc(0), true));
  await c.until(
    (x) => x.frames.some((f) => f.type === FrameType.DATA && f.streamId === 1),
    5000,
    "the watch's first message",
  );
  return c;
}

const pingAcks = (c: RawH2Connection) =>
  c.frames.filter((f) => f.type === FrameType.PING && (f.flags & 0x1) !== 0).length;

describe("with the default client policy (HTTP2_KEEPALIVE_MIN_TIME_SECONDS=300)", () => {
  let service: ChildService;
  beforeAll(async () => {
    service = await startEdgeService(database, {
      HTTP2_KEEPALIVE_TIME_SECONDS: "1",
      HTTP2_KEEPALIVE_TIMEOUT_SECONDS: "1",
      WATCH_PROGRESS_INTERVAL_SECONDS: "1",
    });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it("answers a ping flood during a call with GOAWAY(ENHANCE_YOUR_CALM, too_many_pings) and closes the connection", async () => {
    const c = await withWatch(service.port);
    try {
      // One ping at a time, each after the last one's ack: pings that reach the server in one
      // read are all acked by nghttp2 before the service sees any of them, so a flood sent
      // at once says nothing about when the service ends it (a loaded CI machine saw 10 of 10).
      // The flood stops at the GOAWAY, as a client's would.
      for (let i = 0; i < 10 && !c.closed && c.goaways.length === 0; i++) {
        c.write(ping());
        await c.until((x) => pingAcks(x) > i || x.closed, 5000, `ping ${i + 1}'s ack or the close`);
      }
      await c.until((x) => x.closed, 5000, "the service to close the connection");
      expect(c.goaways[0]).toMatchObject({ code: ErrorCode.ENHANCE_YOUR_CALM, debug: "too_many_pings" });
      // grpc-go's policy: the first ping follows the watch's data; the third too soon after it
      // (the fourth ping) ends it, unless a progress bookmark (data) came between two pings.
      expect(pingAcks(c)).toBeGreaterThanOrEqual(4);
      expect(pingAcks(c)).toBeLessThanOrEqual(6);
    } finally {
      c.destroy();
    }
  });

  it("holds pings on a connection without calls to two hours", async () => {
    const c = await RawH2Connection.open(service.port);
    try {
      await c.settled();
      for (let i = 0; i < 10 && !c.closed; i++) {
        c.write(ping());
        await new Promise((r) => setTimeout(r, 20));
      }
      await c.until((x) => x.closed, 5000, "the service to close the connection");
      expect(c.goaways[0]).toMatchObject({ code: ErrorCode.ENHANCE_YOUR_CALM, debug: "too_many_pings" });
    } finally {
      c.destroy();
    }
  });

  it("does not count pings that follow data we sent (how grpc-go and C-core clients time BDP pings)", async () => {
    const session = connectH2(service.port);
    try {
      const user = randomUserId();
      const request = toBinary(
        WatchProfileEventsRequestSchema,
        create(WatchProfileEventsRequestSchema, { userIds: [user] }),
      );
      const watch = h2Grpc(session, "/profile.v1.ProfileService/WatchProfileEvents", grpcFrame(request), {
        authorization: `Bearer ${await mintToken(user)}`,
      });
      let pings = 0;
      // A bookmark every second (WATCH_PROGRESS_INTERVAL_SECONDS=1); a ping after each, as a BDP estimator does.
      watch.stream.on("data", () => {
        pings++;
        session.ping(() => {});
      });
      const goaways: number[] = [];
      session.on("goaway", (code: number) => goaways.push(code));
      await new Promise((r) => setTimeout(r, 4500));
      expect(pings).toBeGreaterThanOrEqual(4);
      expect(goaways).toEqual([]);
      expect(watch.stream.closed).toBe(false);
      watch.stream.close();
    } finally {
      session.destroy();
    }
  });

  it("pings a connection that has gone quiet, and keeps it while the peer answers", async () => {
    const c = await withWatch(service.port);
    try {
      await new Promise((r) => setTimeout(r, 3500));
      expect(c.serverPings).toBeGreaterThanOrEqual(1);
      expect(c.closed).toBe(false);
      expect(c.goaways).toEqual([]);
    } finally {
      c.destroy();
    }
  });

  it("drops a connection whose peer stops answering pings, ending its watch", async () => {
    const c = await withWatch(service.port, false);
    try {
      const opened = Date.now();
      await c.until((x) => x.closed, 6000, "the service to drop the connection");
      expect(c.serverPings).toBeGreaterThanOrEqual(1);
      // HTTP2_KEEPALIVE_TIME_SECONDS of silence, then HTTP2_KEEPALIVE_TIMEOUT_SECONDS without an ack.
      expect(Date.now() - opened).toBeGreaterThanOrEqual(1500);
    } finally {
      c.destroy();
    }
  });
});

describe("with HTTP2_KEEPALIVE_MIN_TIME_SECONDS=1", () => {
  let service: ChildService;
  beforeAll(async () => {
    service = await startEdgeService(database, { HTTP2_KEEPALIVE_MIN_TIME_SECONDS: "1" });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it("accepts client pings that keep to the interval", async () => {
    const c = await withWatch(service.port);
    try {
      for (let i = 0; i < 4; i++) {
        c.write(ping());
        await new Promise((r) => setTimeout(r, 1200));
      }
      expect(pingAcks(c)).toBe(4);
      expect(c.goaways).toEqual([]);
      expect(c.closed).toBe(false);
    } finally {
      c.destroy();
    }
  });
});
