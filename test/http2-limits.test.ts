// Per-connection limits, seen from outside: concurrent streams, requests
// whose body never arrives, idle connections, and the cap on connections.
// Short limits come from the environment, as an operator would set them.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildService } from "./support/child-service.js";
import { openFds, startEdgeService } from "./support/edge-service.js";
import { connectH2, grpcFrame, h2Grpc, within } from "./support/h2-grpc.js";
import { ErrorCode, grpcData, grpcHeaders, headersFrames, RawH2Connection } from "./support/h2-raw.js";
import { createTestDatabase, type TestDatabase } from "./support/servers.js";

const CHECK = "/grpc.health.v1.Health/Check";
const WATCH = "/grpc.health.v1.Health/Watch";
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const OK = 0;

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase("http2_limits");
});
afterAll(async () => {
  await database?.drop();
});

async function check(port: number): Promise<void> {
  const session = connectH2(port);
  try {
    const result = await within(10_000, "health check", h2Grpc(session, CHECK, grpcFrame(new Uint8Array())).done);
    expect(result.status).toBe(OK);
  } finally {
    session.close();
  }
}

describe("streams and requests", () => {
  let service: ChildService;
  beforeAll(async () => {
    service = await startEdgeService(database, {
      HTTP2_MAX_CONCURRENT_STREAMS: "20",
      REQUEST_BODY_TIMEOUT_SECONDS: "1",
      CONNECTION_IDLE_TIMEOUT_SECONDS: "2",
    });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it("announces HTTP2_MAX_CONCURRENT_STREAMS in SETTINGS, and a client that opens more gets GOAWAY and is closed", async () => {
    const c = await RawH2Connection.open(service.port);
    try {
      await c.settled();
      expect(c.serverSettings.get(SETTINGS_MAX_CONCURRENT_STREAMS)).toBe(20);
      // 21 requests without a body: the first 20 are open, the 21st breaks the setting the client acknowledged.
      for (let i = 0; i < 21; i++) c.write(headersFrames(1 + 2 * i, grpcHeaders(CHECK), false));
      await c.until((x) => x.closed, 5000, "the service to close the connection");
      expect(c.goaways[0]).toMatchObject({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 39 });
      expect(c.goaways[0]!.debug).toContain("max concurrent streams");
    } finally {
      c.destroy();
    }
  });

  it("makes a well-behaved client wait for a free stream instead of opening more", async () => {
    const session = connectH2(service.port);
    try {
      await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
      expect(session.remoteSettings.maxConcurrentStreams).toBe(20);
      // 25 calls whose body never comes: 20 run until REQUEST_BODY_TIMEOUT_SECONDS resets them, then the other 5.
      const calls = Array.from({ length: 25 }, () => h2Grpc(session, CHECK, undefined).done);
      const results = await within(10_000, "the queued calls", Promise.all(calls));
      expect(results.every((r) => r.rstCode === ErrorCode.ENHANCE_YOUR_CALM)).toBe(true);
      expect(session.destroyed).toBe(false);
    } finally {
      session.destroy();
    }
  });

  it("resets requests whose body never arrives after REQUEST_BODY_TIMEOUT_SECONDS (RESOURCE_EXHAUSTED for gRPC)", async () => {
    const sessions = Array.from({ length: 10 }, () => connectH2(service.port));
    try {
      const started = Date.now();
      // 200 calls that send headers and never a body: each would hold a handler and its buffers for good.
      const calls = sessions.flatMap((s) => Array.from({ length: 20 }, () => h2Grpc(s, CHECK, undefined).done));
      const results = await within(10_000, "the half-open calls to be reset", Promise.all(calls));
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(new Set(results.map((r) => r.rstCode))).toEqual(new Set([ErrorCode.ENHANCE_YOUR_CALM]));
      // The same connections go on serving.
      const after = await within(
        5000,
        "a call after the resets",
        h2Grpc(sessions[0]!, CHECK, grpcFrame(new Uint8Array())).done,
      );
      expect(after.status).toBe(OK);
    } finally {
      for (const s of sessions) s.destroy();
    }
  });

  it("lets a slow body in within the timeout, and never cuts a long response whose request is complete", async () => {
    const session = connectH2(service.port);
    try {
      const slow = h2Grpc(session, CHECK, undefined);
      await new Promise((r) => setTimeout(r, 300));
      slow.stream.end(grpcFrame(new Uint8Array()));
      expect((await within(5000, "the slow call", slow.done)).status).toBe(OK);

      const watch = h2Grpc(session, WATCH, grpcFrame(new Uint8Array()));
      await new Promise((r) => setTimeout(r, 2500));
      expect(watch.stream.closed).toBe(false);
      watch.stream.close();
    } finally {
      session.destroy();
    }
  });

  it("closes a connection with no stream for CONNECTION_IDLE_TIMEOUT_SECONDS with GOAWAY, but not one with a stream open", async () => {
    const idle = connectH2(service.port);
    const busy = connectH2(service.port);
    try {
      const goaways: number[] = [];
      idle.on("goaway", (code: number) => goaways.push(code));
      const closed = new Promise<void>((resolve) => idle.once("close", () => resolve()));
      expect((await h2Grpc(idle, CHECK, grpcFrame(new Uint8Array())).done).status).toBe(OK);
      const watch = h2Grpc(busy, WATCH, grpcFrame(new Uint8Array()));
      const idleSince = Date.now();
      await within(6000, "the idle connection to be closed", closed);
      expect(Date.now() - idleSince).toBeGreaterThanOrEqual(1500);
      expect(goaways.length).toBeGreaterThan(0);
      expect(goaways.every((code) => code === ErrorCode.NO_ERROR)).toBe(true);
      // The connection with a watch open is past the idle timeout too, and still there.
      expect(busy.closed || busy.destroyed).toBe(false);
      expect(watch.stream.closed).toBe(false);
      watch.stream.close();
    } finally {
      idle.destroy();
      busy.destroy();
    }
  });
});

describe("MAX_CONNECTIONS", () => {
  let service: ChildService;
  beforeAll(async () => {
    service = await startEdgeService(database, { MAX_CONNECTIONS: "5" });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it("closes the longest-idle connection to let a new client in", async () => {
    const sessions = Array.from({ length: 5 }, () => connectH2(service.port));
    try {
      for (const s of sessions) {
        expect((await h2Grpc(s, CHECK, grpcFrame(new Uint8Array())).done).status).toBe(OK);
        await new Promise((r) => setTimeout(r, 20));
      }
      const oldest = new Promise<void>((resolve) => sessions[0]!.once("close", () => resolve()));
      await check(service.port);
      await within(5000, "the longest-idle connection to be closed", oldest);
      for (const s of sessions.slice(1)) expect(s.closed || s.destroyed).toBe(false);
    } finally {
      for (const s of sessions) s.destroy();
    }
  });

  it("refuses a new connection with GOAWAY(ENHANCE_YOUR_CALM) when none is idle, and keeps serving the others", async () => {
    await new Promise((r) => setTimeout(r, 500));
    const before = openFds(service.child.pid!);
    const busy = await Promise.all(Array.from({ length: 5 }, () => RawH2Connection.open(service.port)));
    try {
      for (const c of busy) {
        c.write(headersFrames(1, grpcHeaders(WATCH), false));
        c.write(grpcData(1, Buffer.alloc(0), true));
        await c.until((x) => x.answeredStreams.has(1), 5000, "a watch on each connection");
      }
      const refused = await Promise.all(Array.from({ length: 10 }, () => RawH2Connection.open(service.port)));
      for (const c of refused) {
        await c.until((x) => x.closed, 5000, "the refused connection to be closed");
        expect(c.goaways[0]).toMatchObject({ code: ErrorCode.ENHANCE_YOUR_CALM, debug: "too_many_connections" });
      }
      // The five admitted connections are untouched and still answer.
      for (const c of busy) {
        expect(c.closed).toBe(false);
        c.write(headersFrames(3, grpcHeaders(CHECK), false));
        c.write(grpcData(3, Buffer.alloc(0), true));
        await c.until((x) => x.answeredStreams.has(3), 5000, "a call on an admitted connection");
      }
      expect(openFds(service.child.pid!)).toBeLessThanOrEqual(before + 5);
    } finally {
      for (const c of busy) c.destroy();
    }
  });
});
