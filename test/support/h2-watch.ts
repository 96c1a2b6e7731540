// WatchProfileEvents over raw node:http2, for bursts: a client that costs far
// less per stream than grpc-js, so thousands of opens reach the server at once.

import * as http2 from "node:http2";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  WatchProfileEventsRequestSchema,
  WatchProfileEventsResponseSchema,
  type WatchProfileEventsResponse,
} from "../../gen/profile/v1/profile_pb.js";

export class H2WatchStream {
  readonly received: WatchProfileEventsResponse[] = [];
  /** grpc-status once the stream ended (from trailers, or a trailers-only reply). */
  status: number | undefined;
  message = "";
  private buffer: Buffer = Buffer.alloc(0);
  private readonly stream: http2.ClientHttp2Stream;
  private waiters: (() => void)[] = [];

  constructor(
    session: http2.ClientHttp2Session,
    request: MessageInitShape<typeof WatchProfileEventsRequestSchema>,
    token: string,
  ) {
    const body = toBinary(WatchProfileEventsRequestSchema, create(WatchProfileEventsRequestSchema, request));
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    this.stream = session.request({
      ":method": "POST",
      ":path": "/profile.v1.ProfileService/WatchProfileEvents",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    const onStatus = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] === undefined) return;
      this.status = Number(h["grpc-status"]);
      this.message = decodeURIComponent(String(h["grpc-message"] ?? ""));
      this.notify();
    };
    this.stream.on("response", onStatus);
    this.stream.on("trailers", onStatus);
    this.stream.on("data", (chunk: Buffer) => this.push(chunk));
    this.stream.on("error", () => {});
    this.stream.on("close", () => {
      // A reset stream has no grpc-status; say so instead of leaving it open.
      if (this.status === undefined) this.message = `stream closed (rst ${this.stream.rstCode})`;
      this.status ??= -1;
      this.notify();
    });
    this.stream.end(frame);
  }

  get events() {
    return this.received.flatMap((m) => (m.kind.case === "event" ? [m.kind.value] : []));
  }

  get bookmarks() {
    return this.received.flatMap((m) => (m.kind.case === "bookmark" ? [m.kind.value] : []));
  }

  async until(predicate: (s: this) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${what}; got ${this.received.length} messages`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  cancel(): void {
    if (!this.stream.closed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 5) {
      const length = this.buffer.readUInt32BE(1);
      if (this.buffer.length < 5 + length) break;
      this.received.push(fromBinary(WatchProfileEventsResponseSchema, this.buffer.subarray(5, 5 + length)));
      this.buffer = this.buffer.subarray(5 + length);
    }
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** Opens `count` HTTP/2 connections to `baseUrl`. */
export async function h2Sessions(baseUrl: string, count: number): Promise<http2.ClientHttp2Session[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const session = http2.connect(baseUrl);
          session.once("connect", () => {
            session.off("error", reject);
            session.on("error", () => {});
            resolve(session);
          });
          session.once("error", reject);
        }),
    ),
  );
}
