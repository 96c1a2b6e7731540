// The gRPC wire format by hand: a 5-byte prefix (compressed flag, big-endian
// length) before each protobuf message. Load generators send pre-built frames
// so encoding costs nothing per request.

import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";

export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

export function requestFrame<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Buffer {
  return grpcFrame(toBinary(schema, create(schema, init)));
}

/** Decodes the single message of a unary response body. */
export function decodeUnary<D extends DescMessage>(schema: D, body: Buffer): MessageShape<D> {
  if (body.length < 5) throw new Error(`response has no message (${body.length} bytes)`);
  const length = body.readUInt32BE(1);
  if (body.readUInt8(0) !== 0 || body.length !== 5 + length) throw new Error("response is not one uncompressed gRPC frame");
  return fromBinary(schema, body.subarray(5));
}

/** gRPC status codes the bench cares about, by name. */
export const GrpcStatus = { OK: 0, UNAUTHENTICATED: 16 } as const;
