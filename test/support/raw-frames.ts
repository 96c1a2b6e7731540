// HTTP/2 frames written by hand, for what node:http2's client refuses to send
// (a header repeated that it treats as single-valued, such as two
// `authorization` lines) or always adds (`:authority`). One request per
// connection; the answer's header blocks are decoded with hpack.js.

import { connect, type Socket } from "node:net";
import hpack from "hpack.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const MAX_FRAME = 16_384;

export type HeaderList = [name: string, value: string][];

export interface FramesResponse {
  /** Each header block received on the stream, in order: the response headers, then any trailers. */
  blocks: Map<string, string[]>[];
  data: Buffer;
  /** The RST_STREAM code that ended the stream, sent by either side (undefined when it ended cleanly). */
  rstCode: number | undefined;
  goAway: number | undefined;
}

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

export interface FramesOptions {
  timeoutMs?: number;
  /**
   * Leaves the request open (no END_STREAM), and cancels the stream with a
   * bare RST_STREAM CANCEL as soon as response data arrives, as Go clients
   * (buf curl, grpcurl) do; node:http2 always half-closes before it resets.
   * The connection stays up a moment longer, so the reset is what ends the call.
   */
  resetOnData?: boolean;
}

const CANCEL = 0x8;

/** Sends `headers` exactly as listed (pseudo-headers included), then `body`, on stream 1. */
export function sendFrames(
  port: number,
  headers: HeaderList,
  body?: Uint8Array,
  options: FramesOptions = {},
): Promise<FramesResponse> {
  const { timeoutMs = 10_000, resetOnData = false } = options;
  const endStream = resetOnData ? 0 : END_STREAM;
  const encoder = hpack.compressor.create({ table: { size: 4096 } });
  encoder.write(headers.map(([name, value]) => ({ name, value, huffman: false, neverIndex: true })));
  const block = encoder.read();
  const decoder = hpack.decompressor.create({ table: { size: 4096 } });
  const out: FramesResponse = { blocks: [], data: Buffer.alloc(0), rstCode: undefined, goAway: undefined };

  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1");
    let buffered = Buffer.alloc(0);
    let pendingBlock: Buffer[] = [];
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(out);
    };
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const decodeBlock = (fragment: Buffer, last: boolean) => {
      pendingBlock.push(fragment);
      if (!last) return;
      decoder.write(Buffer.concat(pendingBlock));
      decoder.execute();
      pendingBlock = [];
      const fields = new Map<string, string[]>();
      for (let h = decoder.read(); h !== null; h = decoder.read())
        fields.set(h.name, [...(fields.get(h.name) ?? []), h.value]);
      out.blocks.push(fields);
    };
    socket.on("error", (err) => done(err));
    socket.on("close", () => done());
    socket.on("connect", () => {
      const parts = [PREFACE, frame(SETTINGS, 0, 0)];
      parts.push(frame(HEADERS, END_HEADERS | (body === undefined ? endStream : 0), 1, block));
      if (body !== undefined) {
        const bytes = Buffer.from(body);
        let offset = 0;
        do {
          const chunk = bytes.subarray(offset, offset + MAX_FRAME);
          offset += MAX_FRAME;
          parts.push(frame(DATA, offset >= bytes.length ? endStream : 0, 1, chunk));
        } while (offset < bytes.length);
      }
      socket.write(Buffer.concat(parts));
    });
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const type = buffered.readUInt8(3);
        const flags = buffered.readUInt8(4);
        const stream = buffered.readUInt32BE(5) & 0x7fffffff;
        let payload = buffered.subarray(9, 9 + length);
        buffered = buffered.subarray(9 + length);
        if (type === SETTINGS && (flags & ACK) === 0) socket.write(frame(SETTINGS, ACK, 0));
        else if (type === PING && (flags & ACK) === 0) socket.write(frame(PING, ACK, 0, payload));
        else if (type === GOAWAY) {
          out.goAway = payload.readUInt32BE(4);
          done();
        } else if (stream === 1 && (type === HEADERS || type === CONTINUATION)) {
          if (type === HEADERS) {
            const pad = (flags & PADDED) !== 0 ? payload.readUInt8(0) : 0;
            payload = payload.subarray((flags & PADDED) !== 0 ? 1 : 0, payload.length - pad);
            if ((flags & PRIORITY) !== 0) payload = payload.subarray(5);
          }
          decodeBlock(payload, (flags & END_HEADERS) !== 0);
          if ((flags & END_STREAM) !== 0) done();
        } else if (stream === 1 && type === DATA) {
          const pad = (flags & PADDED) !== 0 ? payload.readUInt8(0) : 0;
          out.data = Buffer.concat([out.data, payload.subarray((flags & PADDED) !== 0 ? 1 : 0, payload.length - pad)]);
          if (resetOnData && out.rstCode === undefined) {
            const code = Buffer.alloc(4);
            code.writeUInt32BE(CANCEL);
            socket.write(frame(RST_STREAM, 0, 1, code));
            out.rstCode = CANCEL;
            setTimeout(() => done(), 200);
          } else if ((flags & END_STREAM) !== 0) done();
        } else if (stream === 1 && type === RST_STREAM) {
          out.rstCode = payload.readUInt32BE(0);
          done();
        }
      }
    });
  });
}

/** The first value of `name` in the last header block that has it (trailers win over headers). */
export function lastHeader(res: FramesResponse, name: string): string | undefined {
  for (let i = res.blocks.length - 1; i >= 0; i--) {
    const value = res.blocks[i]!.get(name);
    if (value !== undefined) return value[0];
  }
  return undefined;
}
