// Connection hygiene, seen from outside: what a broken or hostile HTTP/2 peer
// gets back, and whether the service frees the connection's socket and file
// descriptor afterwards. The service runs as a child process so that its
// descriptors can be counted in /proc.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildService } from "./support/child-service.js";
import { openFds, startEdgeService } from "./support/edge-service.js";
import { connectH2, grpcFrame, h2Grpc, within } from "./support/h2-grpc.js";
import {
  ErrorCode,
  FrameType,
  grpcData,
  grpcHeaders,
  headersFrames,
  hpack,
  frame,
  RawH2Connection,
  rstStream,
} from "./support/h2-raw.js";
import { createTestDatabase, type TestDatabase } from "./support/servers.js";

const CHECK = "/grpc.health.v1.Health/Check";
const WATCH = "/grpc.health.v1.Health/Watch";
const OK = 0;
const RESOURCE_EXHAUSTED = 8;

let database: TestDatabase;
let service: ChildService;

beforeAll(async () => {
  database = await createTestDatabase("http2_hygiene");
  service = await startEdgeService(database, {
    // Short enough that a wedged connection is found within the test.
    HTTP2_KEEPALIVE_TIME_SECONDS: "1",
    HTTP2_KEEPALIVE_TIMEOUT_SECONDS: "1",
    CONNECTION_PREFACE_TIMEOUT_SECONDS: "1",
    READ_MAX_BYTES: "1024",
    HTTP2_STREAM_RESET_BURST: "100",
  });
});
afterAll(async () => {
  await service?.stop();
  await database?.drop();
});

/** A health check on a fresh connection: the service is still answering. */
async function stillServing(): Promise<void> {
  const session = connectH2(service.port);
  try {
    const result = await within(10_000, "health check", h2Grpc(session, CHECK, grpcFrame(new Uint8Array())).done);
    expect(result.status).toBe(OK);
  } finally {
    session.close();
  }
}

async function settledFds(): Promise<number> {
  await new Promise((r) => setTimeout(r, 300));
  return openFds(service.child.pid!);
}

/**
 * Connection errors, each of which nghttp2 answers with GOAWAY and then
 * stops reading. Node 20 left such a connection open for good: its socket, its
 * descriptor and its other streams (a watch included) hung.
 */
const connectionErrors: Record<string, { frames: () => Buffer; code: number }> = {
  "a header field over 64 KiB": {
    frames: () => headersFrames(3, grpcHeaders(CHECK, [["x-big", "a".repeat(70_000)]]), true),
    code: ErrorCode.COMPRESSION_ERROR,
  },
  "a header block that does not decode": {
    frames: () => frame(FrameType.HEADERS, 0x5, 3, Buffer.from([0xff, 0x7f])),
    code: ErrorCode.COMPRESSION_ERROR,
  },
  "a frame larger than SETTINGS_MAX_FRAME_SIZE": {
    frames: () =>
      Buffer.concat([headersFrames(3, grpcHeaders(CHECK), false), frame(FrameType.DATA, 0, 3, Buffer.alloc(20_000))]),
    code: ErrorCode.FRAME_SIZE_ERROR,
  },
  "a SETTINGS frame of the wrong length": {
    frames: () => frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5)),
    code: ErrorCode.FRAME_SIZE_ERROR,
  },
  "a CONTINUATION without HEADERS": {
    frames: () => frame(FrameType.CONTINUATION, 0x4, 5, Buffer.from([0x82])),
    code: ErrorCode.PROTOCOL_ERROR,
  },
};

describe("connection errors", () => {
  it("close the connection: 20 of them leak no file descriptor, and no stream is left hanging", async () => {
    await stillServing();
    const before = await settledFds();
    const kinds = Object.entries(connectionErrors);
    const connections: { c: RawH2Connection; kind: string; code: number }[] = [];
    for (let i = 0; i < 20; i++) {
      const [kind, { frames, code }] = kinds[i % kinds.length]!;
      const c = await RawH2Connection.open(service.port);
      connections.push({ c, kind, code });
      // A long stream first: it must not be left hanging on a dead connection.
      c.write(headersFrames(1, grpcHeaders(WATCH), false));
      c.write(grpcData(1, Buffer.alloc(0), true));
      await c.until((x) => x.answeredStreams.has(1), 5000, "the watch's response headers");
      c.write(frames());
    }
    for (const { c, kind, code } of connections) {
      await c.until((x) => x.goaways.length > 0, 5000, `GOAWAY after ${kind}`);
      expect(c.goaways[0]!.code, kind).toBe(code);
    }
    // The service closes each connection itself; the clients never do.
    for (const { c, kind } of connections) {
      await c.until((x) => x.closed, 10_000, `the service to close the connection after ${kind}`);
    }
    await expect.poll(() => openFds(service.child.pid!), { timeout: 5000 }).toBeLessThanOrEqual(before);
    await stillServing();
  });

  it("a header list over HTTP2_MAX_HEADER_LIST_BYTES gets its stream reset, and the connection goes on", async () => {
    const c = await RawH2Connection.open(service.port);
    try {
      await c.settled();
      // 20 headers of 1 KiB: each one is small, the list (20 KiB) is over the 16 KiB default.
      const many = Array.from({ length: 20 }, (_, i): [string, string] => [`x-h${i}`, "a".repeat(1024)]);
      c.write(headersFrames(1, grpcHeaders(CHECK, many), false));
      await c.until((x) => x.resets.has(1) || x.answeredStreams.has(1), 5000, "an answer to stream 1");
      expect(c.resets.get(1)).toBe(ErrorCode.ENHANCE_YOUR_CALM);
      c.write(headersFrames(3, grpcHeaders(CHECK), false));
      c.write(grpcData(3, Buffer.alloc(0), true));
      await c.until((x) => x.answeredStreams.has(3), 5000, "the next call on the same connection");
      expect(c.goaways).toEqual([]);
    } finally {
      c.destroy();
    }
  });
});

describe("oversized requests", () => {
  it("are answered RESOURCE_EXHAUSTED and leave the connection usable for the next call", async () => {
    const session = connectH2(service.port);
    try {
      for (let i = 0; i < 3; i++) {
        // A message 1 MiB long against READ_MAX_BYTES=1024, body still being sent when the answer comes.
        const { stream, done } = h2Grpc(session, CHECK, undefined);
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(1024 * 1024, 1);
        stream.write(prefix);
        stream.write(Buffer.alloc(1024 * 1024));
        const result = await within(10_000, "the oversized call", done);
        expect(result.status).toBe(RESOURCE_EXHAUSTED);
      }
      const next = await within(
        5000,
        "a call after the oversized ones",
        h2Grpc(session, CHECK, grpcFrame(new Uint8Array())).done,
      );
      expect(next.status).toBe(OK);
    } finally {
      session.destroy();
    }
  });
});

describe("rapid reset (CVE-2023-44487)", () => {
  it("sends the flooding connection GOAWAY and closes it, while health checks keep answering", async () => {
    const attacker = await RawH2Connection.open(service.port);
    const block = hpack(grpcHeaders(CHECK));
    let flooding = true;
    const checks: number[] = [];
    const health = connectH2(service.port);
    const checking = (async () => {
      while (flooding) {
        const result = await within(
          10_000,
          "health check during the flood",
          h2Grpc(health, CHECK, grpcFrame(new Uint8Array())).done,
        );
        checks.push(result.status ?? -1);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      // HEADERS (the body still to come, so the stream stays open) then RST_STREAM(CANCEL),
      // 2,000 times (20 × the burst), as fast as the socket takes them. 20,000 left a loaded
      // server seconds of backlog to chew through after its GOAWAY, past the wait below.
      for (let id = 1; id < 4_000 && !attacker.closed;) {
        const batch: Buffer[] = [];
        for (let k = 0; k < 100 && id < 4_000; k++, id += 2) {
          batch.push(frame(FrameType.HEADERS, 0x4, id, block), rstStream(id, ErrorCode.CANCEL));
        }
        if (!attacker.write(Buffer.concat(batch))) await new Promise((r) => setTimeout(r, 1));
        await new Promise((r) => setImmediate(r));
      }
      // The server may still be reading the flood's backlog on a loaded machine: what matters is that it comes.
      await attacker.until((c) => c.goaways.length > 0, 15_000, "GOAWAY to the attacker");
      expect(attacker.goaways[0]!.code).toBe(ErrorCode.ENHANCE_YOUR_CALM);
      // HTTP2_STREAM_RESET_BURST=100: a few hundred streams got in, not the thousand nghttp2 alone lets through.
      expect(attacker.goaways[0]!.lastStreamId).toBeLessThanOrEqual(2 * 300);
      await attacker.until((c) => c.closed, 5000, "the attacker's connection to be closed");
    } finally {
      flooding = false;
      await checking;
      health.close();
      attacker.destroy();
    }
    expect(checks.length).toBeGreaterThan(0);
    expect(checks.every((s) => s === OK)).toBe(true);
    await stillServing();
  });
});

describe("connections that never send the HTTP/2 preface", () => {
  it("are closed after CONNECTION_PREFACE_TIMEOUT_SECONDS, and their descriptors freed", async () => {
    const before = await settledFds();
    const silent = await Promise.all(
      Array.from({ length: 30 }, () => RawH2Connection.open(service.port, { preface: false })),
    );
    const opened = Date.now();
    for (const c of silent) await c.until((x) => x.closed, 5000, "the service to close a silent connection");
    expect(Date.now() - opened).toBeGreaterThanOrEqual(800);
    await expect.poll(() => openFds(service.child.pid!), { timeout: 5000 }).toBeLessThanOrEqual(before);
  });

  it("closes a connection that sends something else than the preface", async () => {
    const c = await RawH2Connection.open(service.port, { preface: false });
    c.write(Buffer.from("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
    await c.until((x) => x.closed, 5000, "the service to close the connection");
    await stillServing();
  });
});
