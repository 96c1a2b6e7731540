// A request whose message cannot be decoded is the client's mistake:
// INVALID_ARGUMENT, with a message that says what was wrong (never the
// payload), logged and counted like any other call.
//
// Connect-ES gets all three wrong on its own. It decodes a unary request's
// message before any interceptor runs, and it answers what it cannot decode
// with INTERNAL: "parse binary: …" for protobuf that does not parse (bad
// tags, truncation, invalid UTF-8, nesting past protobuf-es' limit of 100),
// "received compressed envelope, but do not know how to decompress" for the
// compressed flag without grpc-encoding, "decompression failed" for truncated
// gzip, and "internal error" for bad base64 in a GET. None of it reaches our
// interceptors, so none of it was logged or counted, and the client was told
// the server was at fault.
//
// Its serialization cannot be replaced (the router takes no codec), and the
// error is raised and serialized inside its protocol handlers. The choices
// were: patch Connect-ES (unmaintainable); mutate the error from the
// context's abort listener (fragile, and silent when the signal had already
// aborted); match its error messages after the fact (string matching on
// another library's wording); or answer these requests ourselves (a second
// copy of each protocol's error encoding). Instead each universal handler is
// wrapped: the wrapper decodes the request first, with the same framing,
// decompression and protobuf-es parse Connect-ES is about to apply. A request
// that decodes goes on unchanged, and Connect-ES decodes it again (a few
// microseconds for our messages). One that does not is replaced by an empty
// message of the same protocol, and the problem travels in the context values
// to the innermost interceptor, which throws it. So the call fails after
// authentication, through the same interceptors, logs and metrics as any
// other, and Connect-ES writes the status in whichever protocol the client
// speaks. Streaming requests (reflection) are checked message by message as
// they arrive, and fail their stream the same way.

import { fromBinary, fromJsonString, type DescMessage } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createContextKey, type ContextValues, type Interceptor } from "@connectrpc/connect";
import {
  createAsyncIterable,
  encodeEnvelope,
  type Compression,
  type UniversalHandler,
  type UniversalHandlerFn,
  type UniversalServerRequest,
} from "@connectrpc/connect/protocol";
import { parseContentType as parseConnect } from "@connectrpc/connect/protocol-connect";
import { parseContentType as parseGrpc } from "@connectrpc/connect/protocol-grpc";
import { parseContentType as parseGrpcWeb } from "@connectrpc/connect/protocol-grpc-web";

const undecodableKey = createContextKey<ConnectError | undefined>(undefined, {
  description: "why the request message could not be decoded",
});

/**
 * The innermost interceptor: a call whose request could not be decoded fails
 * here, before its handler. ProfileService calls (`selfChecked`) pass: their
 * handlers report it after authentication (connect-service.ts).
 */
export function undecodableRequests(selfChecked: ReadonlySet<string>): Interceptor {
  return (next) => async (req) => {
    const problem = req.contextValues.get(undecodableKey);
    if (problem !== undefined && !selfChecked.has(req.service.typeName)) throw problem;
    return next(req);
  };
}

/** Why the call's request could not be decoded, if it could not. */
export function undecodableProblem(values: ContextValues): ConnectError | undefined {
  return values.get(undecodableKey);
}

export interface DecodeOptions {
  /** The compressions the router accepts. */
  compressions: readonly Compression[];
  readMaxBytes: number;
}

/** How a request carries its message(s), as the protocol handler Connect-ES picks will read them. */
interface Wire {
  /** Length-prefixed envelopes (gRPC, gRPC-Web, Connect streaming), the whole body (Connect unary), or the query (Connect GET). */
  framing: "envelope" | "body" | "query";
  binary: boolean;
  /** Connect streaming: envelopes flagged end-of-stream carry no message. */
  endStreamFlag: number | undefined;
  /** Where the request names its compression, and which it names (null: none). */
  encodingHeader: string | undefined;
  encoding: string | null;
}

const COMPRESSED = 0b01;
const CONNECT_END_STREAM = 0b10;
const ENVELOPE_HEADER = 5;

function wireOf(req: UniversalServerRequest): Wire | undefined {
  if (req.method === "GET") {
    const params = new URL(req.url).searchParams;
    const encoding = params.get("encoding");
    if (encoding !== "proto" && encoding !== "json") return undefined;
    return {
      framing: "query",
      binary: encoding === "proto",
      endStreamFlag: undefined,
      encodingHeader: undefined,
      encoding: params.get("compression"),
    };
  }
  if (req.method !== "POST") return undefined;
  const contentType = req.header.get("content-type");
  const header = (name: string) => ({ encodingHeader: name, encoding: req.header.get(name) });
  const web = parseGrpcWeb(contentType);
  // grpc-web-text is refused by Connect-ES (415) before any decoding.
  const grpc = parseGrpc(contentType) ?? (web?.text === false ? web : undefined);
  if (grpc !== undefined) {
    return { framing: "envelope", binary: grpc.binary, endStreamFlag: undefined, ...header("grpc-encoding") };
  }
  const connect = parseConnect(contentType);
  if (connect === undefined) return undefined;
  return connect.stream
    ? {
        framing: "envelope",
        binary: connect.binary,
        endStreamFlag: CONNECT_END_STREAM,
        ...header("connect-content-encoding"),
      }
    : { framing: "body", binary: connect.binary, endStreamFlag: undefined, ...header("content-encoding") };
}

/** Wraps a Connect-ES universal handler so that requests are decoded before it sees them (see the top of this file). */
export function decodeFirst(handler: UniversalHandler, options: DecodeOptions): UniversalHandlerFn {
  const decoder = new MessageDecoder(handler.method.input, options);
  const single = handler.method.methodKind === "unary" || handler.method.methodKind === "server_streaming";
  return async (req) => {
    const wire = wireOf(req);
    const body = req.body;
    if (wire === undefined || req.contextValues === undefined || !isByteStream(body)) return handler(req);
    if (!single) {
      return wire.framing === "envelope" ? handler({ ...req, body: decoder.checkStream(body, wire) }) : handler(req);
    }
    const { chunks, problem } = await decoder.single(req, wire, body);
    if (problem === undefined) return handler({ ...req, body: createAsyncIterable(chunks) });
    req.contextValues.set(undecodableKey, problem);
    return handler(emptyRequest(req, wire));
  };
}

function isByteStream(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

interface Read {
  chunks: Uint8Array[];
  problem?: ConnectError;
}

/**
 * The body of a single-message request, read no further than the limits
 * Connect-ES applies: it stops as soon as the declared size is over
 * READ_MAX_BYTES, or a second message starts.
 */
async function readSingle(body: AsyncIterable<Uint8Array>, wire: Wire, readMaxBytes: number): Promise<Read> {
  // Read by hand, not with for-await: leaving that loop early would return()
  // the body's iterator, which destroys the HTTP/2 stream before the answer
  // is written. Left alone, the rest of the body goes when the stream ends.
  const it = body[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await it.next();
    } catch (err) {
      // The stream was reset or the connection closed before the body was complete.
      return { chunks, problem: ConnectError.from(err, Code.Canceled) };
    }
    if (next.done === true) return { chunks };
    chunks.push(next.value);
    total += next.value.byteLength;
    if (wire.framing === "body") {
      if (total > readMaxBytes) return { chunks, problem: tooLarge(readMaxBytes) };
      continue;
    }
    if (total < ENVELOPE_HEADER) continue;
    const length = envelopeLength(chunks);
    if (length > readMaxBytes) return { chunks, problem: tooLarge(readMaxBytes) };
    if (total > ENVELOPE_HEADER + length) return { chunks, problem: oneMessage("more than one arrived") };
  }
}

/** Connect unary bodies and GET queries: the encoding covers the whole message. */
function compressedBody(wire: Wire): boolean {
  return wire.encoding !== null && wire.encoding !== "identity";
}

/** A Connect unary body whose content-length is over the limit is refused unread, as Connect-ES does. */
function declaredTooLarge(req: UniversalServerRequest, wire: Wire, readMaxBytes: number): ConnectError | undefined {
  if (wire.framing !== "body") return undefined;
  const length = Number(req.header.get("content-length") ?? "0");
  return length > readMaxBytes ? tooLarge(readMaxBytes) : undefined;
}

function envelopeLength(chunks: readonly Uint8Array[]): number {
  const head = new Uint8Array(ENVELOPE_HEADER);
  let filled = 0;
  for (const chunk of chunks) {
    const take = Math.min(chunk.byteLength, ENVELOPE_HEADER - filled);
    head.set(chunk.subarray(0, take), filled);
    filled += take;
    if (filled === ENVELOPE_HEADER) break;
  }
  return new DataView(head.buffer).getUint32(1);
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

class MessageDecoder {
  constructor(
    private readonly schema: DescMessage,
    private readonly options: DecodeOptions,
  ) {}

  /** Reads a single-message request, and says why its message cannot be decoded (no problem: it can). */
  async single(req: UniversalServerRequest, wire: Wire, body: AsyncIterable<Uint8Array>): Promise<Read> {
    const upfront = this.compressionProblem(wire) ?? declaredTooLarge(req, wire, this.options.readMaxBytes);
    if (upfront !== undefined) return { chunks: [], problem: upfront };
    if (wire.framing === "query") return { chunks: [], problem: await this.queryProblem(req.url, wire) };
    const read = await readSingle(body, wire, this.options.readMaxBytes);
    return read.problem === undefined
      ? { chunks: read.chunks, problem: await this.problemOf(wire, read.chunks) }
      : read;
  }

  /** An encoding we cannot decompress fails the call whether or not a message is flagged compressed, as in Connect-ES. */
  compressionProblem(wire: Wire): ConnectError | undefined {
    if (wire.encoding === null || wire.encoding === "identity") return undefined;
    if (this.options.compressions.some((c) => c.name === wire.encoding)) return undefined;
    const supported = this.options.compressions.map((c) => c.name).join(", ");
    return new ConnectError(
      `unknown compression "${printable(wire.encoding)}": supported are ${supported}`,
      Code.Unimplemented,
    );
  }

  private async problemOf(wire: Wire, chunks: readonly Uint8Array[]): Promise<ConnectError | undefined> {
    const bytes = concat(chunks);
    if (wire.framing === "body") return this.messageProblem(bytes, wire, compressedBody(wire));
    if (bytes.byteLength === 0) return oneMessage("none arrived");
    if (bytes.byteLength < ENVELOPE_HEADER) return incomplete(bytes.byteLength, ENVELOPE_HEADER);
    const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
    if (bytes.byteLength < ENVELOPE_HEADER + length) return incomplete(bytes.byteLength - ENVELOPE_HEADER, length);
    const flags = bytes[0]!;
    if (wire.endStreamFlag !== undefined && (flags & wire.endStreamFlag) !== 0) return oneMessage("none arrived");
    return this.messageProblem(bytes.subarray(ENVELOPE_HEADER), wire, (flags & COMPRESSED) !== 0);
  }

  /** Passes a stream of envelopes on as they arrive, failing it at the first message that cannot be decoded. */
  async *checkStream(body: AsyncIterable<Uint8Array>, wire: Wire): AsyncGenerator<Uint8Array> {
    const unknown = this.compressionProblem(wire);
    if (unknown !== undefined) throw unknown;
    let pending: Uint8Array = new Uint8Array(0);
    // By hand, not with for-await: see readSingle.
    const it = body[Symbol.asyncIterator]();
    for (let next = await it.next(); next.done !== true; next = await it.next()) {
      const chunk = next.value;
      pending = pending.byteLength === 0 ? chunk : concat([pending, chunk]);
      while (pending.byteLength >= ENVELOPE_HEADER) {
        const length = new DataView(pending.buffer, pending.byteOffset, pending.byteLength).getUint32(1);
        if (length > this.options.readMaxBytes) throw tooLarge(this.options.readMaxBytes);
        if (pending.byteLength < ENVELOPE_HEADER + length) break;
        const flags = pending[0]!;
        const message = pending.subarray(ENVELOPE_HEADER, ENVELOPE_HEADER + length);
        if (wire.endStreamFlag === undefined || (flags & wire.endStreamFlag) === 0) {
          const problem = await this.messageProblem(message, wire, (flags & COMPRESSED) !== 0);
          if (problem !== undefined) throw problem;
        }
        yield encodeEnvelope(flags, message);
        pending = pending.subarray(ENVELOPE_HEADER + length);
      }
    }
    if (pending.byteLength >= ENVELOPE_HEADER) {
      const length = new DataView(pending.buffer, pending.byteOffset, pending.byteLength).getUint32(1);
      throw incomplete(pending.byteLength - ENVELOPE_HEADER, length);
    }
    if (pending.byteLength > 0) throw incomplete(pending.byteLength, ENVELOPE_HEADER);
  }

  private async queryProblem(url: string, wire: Wire): Promise<ConnectError | undefined> {
    const params = new URL(url).searchParams;
    const message = params.get("message") ?? "";
    let bytes: Uint8Array;
    if (params.get("base64") === "1") {
      try {
        bytes = base64Decode(message);
      } catch {
        return invalid("the message query parameter is not valid base64 (standard or URL-safe)");
      }
    } else {
      bytes = new TextEncoder().encode(message);
    }
    return this.messageProblem(bytes, wire, compressedBody(wire));
  }

  private async messageProblem(bytes: Uint8Array, wire: Wire, compressed: boolean): Promise<ConnectError | undefined> {
    let plain = bytes;
    if (compressed) {
      const compression = wire.encoding === "identity" ? null : wire.encoding;
      if (compression === null) {
        return invalid(
          `the message is flagged as compressed, but the request names no ${wire.encodingHeader ?? "compression"}`,
        );
      }
      const codec = this.options.compressions.find((c) => c.name === compression);
      if (codec === undefined) return this.compressionProblem(wire);
      try {
        plain = await codec.decompress(bytes, this.options.readMaxBytes);
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.ResourceExhausted) return err;
        return invalid(`the message is not valid ${codec.name} data (${zlibReason(err)})`);
      }
    }
    if (plain.byteLength > this.options.readMaxBytes) return tooLarge(this.options.readMaxBytes);
    return wire.binary ? this.binaryProblem(plain) : this.jsonProblem(plain);
  }

  private binaryProblem(bytes: Uint8Array): ConnectError | undefined {
    try {
      fromBinary(this.schema, bytes);
      return undefined;
    } catch (err) {
      return invalid(`the message is not a valid ${this.schema.typeName}: ${binaryReason(err)}`);
    }
  }

  private jsonProblem(bytes: Uint8Array): ConnectError | undefined {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return invalid(`the message is not valid JSON for ${this.schema.typeName}: it is not valid UTF-8`);
    }
    try {
      // As Connect-ES parses JSON: unknown fields are ignored.
      fromJsonString(this.schema, text, { ignoreUnknownFields: true });
      return undefined;
    } catch (err) {
      return invalid(`the message is not valid JSON for ${this.schema.typeName}: ${jsonReason(err)}`);
    }
  }
}

// protobuf-es' messages are structural, but some carry a value from the
// payload ("invalid int32: …"); these say what was wrong in our words.
export function binaryReason(err: unknown): string {
  const message = err instanceof Error ? err.message : "";
  if ((err as { code?: unknown } | null)?.code === "ERR_ENCODING_INVALID_ENCODED_DATA" || /utf-?8/i.test(message)) {
    return "a string field is not valid UTF-8";
  }
  if (/recursion depth/.test(message)) return "it nests more than 100 levels deep";
  if (/premature EOF|varint/.test(message)) return "it is truncated, or a length inside it is wrong";
  if (/illegal tag|wire type|end group/.test(message)) return "it has an illegal tag or wire type";
  return "its bytes are not a valid protobuf encoding";
}

function jsonReason(err: unknown): string {
  if (err instanceof SyntaxError) return "it is not valid JSON";
  const message = err instanceof Error ? err.message : "";
  if (/recursion depth/.test(message)) return "it nests more than 100 levels deep";
  const field = (err as { field?: () => { name: string } }).field;
  if (typeof field === "function") return `field ${field().name} has the wrong type or an invalid value`;
  return "it does not match the message's fields";
}

function zlibReason(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  return cause instanceof Error ? cause.message : "corrupt data";
}

/** The same request, carrying an empty message of the same protocol, so Connect-ES decodes it without fail. */
function emptyRequest(req: UniversalServerRequest, wire: Wire): UniversalServerRequest {
  const header = new Headers(req.header);
  if (wire.encodingHeader !== undefined) header.delete(wire.encodingHeader);
  if (wire.framing === "query") {
    const url = new URL(req.url);
    for (const name of ["message", "base64", "compression"]) url.searchParams.delete(name);
    if (!wire.binary) url.searchParams.set("message", "{}");
    return { ...req, header, url: url.toString() };
  }
  const message = wire.binary ? new Uint8Array(0) : new TextEncoder().encode("{}");
  const body = wire.framing === "envelope" ? encodeEnvelope(0, message) : message;
  header.set("content-length", String(body.byteLength));
  return { ...req, header, body: createAsyncIterable([body]) };
}

function invalid(what: string): ConnectError {
  return new ConnectError(what, Code.InvalidArgument);
}

function tooLarge(readMaxBytes: number): ConnectError {
  return new ConnectError(
    `the request message is larger than ${readMaxBytes} bytes (READ_MAX_BYTES)`,
    Code.ResourceExhausted,
  );
}

function oneMessage(got: string): ConnectError {
  return invalid(`this method takes exactly one request message; ${got}`);
}

function incomplete(got: number, promised: number): ConnectError {
  return invalid(`the request ends inside a message: ${got} of ${promised} bytes arrived`);
}

function printable(s: string): string {
  return s.slice(0, 32).replace(/[^\x20-\x7e]/g, "?");
}
