// A raw HTTP/2 client over a plain TCP socket: it writes frames byte by byte
// and records every frame the server sends, so tests can do what a hostile or
// broken peer does (skip the preface, send oversized header blocks, flood
// resets or pings, never ack a PING) and see exactly what comes back.

import * as net from "node:net";

export const FrameType = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const ErrorCode = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  FRAME_SIZE_ERROR: 6,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export interface Goaway {
  lastStreamId: number;
  code: number;
  debug: string;
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s);
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes]);
}

/** A header block of literals without indexing and without Huffman: valid HPACK with no table state. */
export function hpack(headers: [string, string][]): Buffer {
  return Buffer.concat(headers.flatMap(([name, value]) => [Buffer.from([0]), hpackString(name), hpackString(value)]));
}

/** HEADERS, then CONTINUATION frames as needed (16 KiB each, the default SETTINGS_MAX_FRAME_SIZE). */
export function headersFrames(streamId: number, headers: [string, string][], endStream: boolean): Buffer {
  const block = hpack(headers);
  const max = 16_384;
  const frames: Buffer[] = [];
  for (let offset = 0; ; offset += max) {
    const first = offset === 0;
    const last = offset + max >= block.length;
    const flags = (last ? FLAG_END_HEADERS : 0) | (first && endStream ? FLAG_END_STREAM : 0);
    frames.push(
      frame(first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId, block.subarray(offset, offset + max)),
    );
    if (last) return Buffer.concat(frames);
  }
}

export function rstStream(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, streamId, payload);
}

export function ping(data = Buffer.alloc(8)): Buffer {
  return frame(FrameType.PING, 0, 0, data);
}

/** A gRPC length-prefixed message in a DATA frame. */
export function grpcData(streamId: number, message: Buffer, endStream: boolean): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return frame(FrameType.DATA, endStream ? FLAG_END_STREAM : 0, streamId, Buffer.concat([prefix, message]));
}

/** Request headers for a gRPC call to `path` (cleartext, prior knowledge). */
export function grpcHeaders(path: string, extra: [string, string][] = []): [string, string][] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "127.0.0.1"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ];
}

export interface RawConnectionOptions {
  /** Send the client preface and an empty SETTINGS frame at once (default true). */
  preface?: boolean;
  /** Answer the server's PING frames (default true); false plays a peer that is gone. */
  ackPings?: boolean;
}

export class RawH2Connection {
  readonly frames: Frame[] = [];
  closed = false;
  /** Whether this side has sent the preface, so that it may answer SETTINGS. */
  prefaceSent = false;
  private buffer = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly socket: net.Socket,
    private readonly options: RawConnectionOptions,
  ) {
    socket.on("data", (data: Buffer) => this.receive(data));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.notify();
    });
  }

  static async open(port: number, options: RawConnectionOptions = {}): Promise<RawH2Connection> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const connection = new RawH2Connection(socket, options);
    if (options.preface !== false) connection.sendPreface();
    return connection;
  }

  sendPreface(): void {
    this.prefaceSent = true;
    this.write(Buffer.concat([PREFACE, frame(FrameType.SETTINGS, 0, 0)]));
  }

  /**
   * Waits until the server's SETTINGS are in force: it sent them, we acked
   * them, and a PING sent after the ack has come back, so the server has
   * read the ack. Until then it may apply the protocol's defaults.
   */
  async settled(): Promise<void> {
    await this.until(
      (c) => c.frames.some((f) => f.type === FrameType.SETTINGS && (f.flags & FLAG_ACK) === 0),
      5000,
      "SETTINGS",
    );
    const acks = () => this.frames.filter((f) => f.type === FrameType.PING && (f.flags & FLAG_ACK) !== 0).length;
    const before = acks();
    this.write(ping(Buffer.from("settled!")));
    await this.until(() => acks() > before, 5000, "the PING ack");
  }

  /** SETTINGS the server sent, by identifier (RFC 9113 §6.5.2). */
  get serverSettings(): Map<number, number> {
    const settings = new Map<number, number>();
    for (const f of this.frames) {
      if (f.type !== FrameType.SETTINGS || (f.flags & FLAG_ACK) !== 0) continue;
      for (let i = 0; i + 6 <= f.payload.length; i += 6)
        settings.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
    }
    return settings;
  }

  /** Writes unless the socket is gone; false when the kernel buffer is full. */
  write(data: Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(data);
  }

  get goaways(): Goaway[] {
    return this.frames
      .filter((f) => f.type === FrameType.GOAWAY)
      .map((f) => ({
        lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
        code: f.payload.readUInt32BE(4),
        debug: f.payload.subarray(8).toString(),
      }));
  }

  /** RST_STREAM codes the server sent, by stream id. */
  get resets(): Map<number, number> {
    return new Map(
      this.frames.filter((f) => f.type === FrameType.RST_STREAM).map((f) => [f.streamId, f.payload.readUInt32BE(0)]),
    );
  }

  /** PING frames from the server (not acks of ours). */
  get serverPings(): number {
    return this.frames.filter((f) => f.type === FrameType.PING && (f.flags & FLAG_ACK) === 0).length;
  }

  /** Streams the server answered with HEADERS. */
  get answeredStreams(): Set<number> {
    return new Set(this.frames.filter((f) => f.type === FrameType.HEADERS).map((f) => f.streamId));
  }

  /** Waits until `predicate` holds (checked on every frame and on close), or throws after `timeoutMs`. */
  async until(predicate: (c: this) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(remaining, 100));
        this.waiters.add(done);
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(data: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, data]);
    while (this.buffer.length >= 9) {
      const length = this.buffer.readUIntBE(0, 3);
      if (this.buffer.length < 9 + length) break;
      const f: Frame = {
        type: this.buffer[3]!,
        flags: this.buffer[4]!,
        streamId: this.buffer.readUInt32BE(5) & 0x7fffffff,
        payload: this.buffer.subarray(9, 9 + length),
      };
      this.buffer = this.buffer.subarray(9 + length);
      this.frames.push(f);
      if (f.type === FrameType.SETTINGS && (f.flags & FLAG_ACK) === 0 && this.prefaceSent)
        this.write(frame(FrameType.SETTINGS, FLAG_ACK, 0));
      if (
        f.type === FrameType.PING &&
        (f.flags & FLAG_ACK) === 0 &&
        this.prefaceSent &&
        this.options.ackPings !== false
      ) {
        this.write(frame(FrameType.PING, FLAG_ACK, 0, f.payload));
      }
    }
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
