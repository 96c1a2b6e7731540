// grpc-js service definitions over the protobuf-es messages in gen/. Requests
// arrive as bytes (an identity deserializer): grpc-js answers a deserializer
// that throws with INTERNAL, so the adapter decodes them itself and answers
// INVALID_ARGUMENT, after authentication. Responses are encoded with toBinary.

import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { Code, RpcError } from "../api/status.js";
import { binaryReason } from "./request-decoding.js";

export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Buffer, unknown>> = {};
  for (const method of service.methods) {
    const output = method.output;
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (bytes: Buffer) => bytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      // A reply may be sent again (api/reply-memo.ts), a streamed message to many streams.
      responseSerialize: (message: unknown) => encodedOnce(output, message as MessageShape<typeof output>),
      responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
      originalName: method.localName,
    };
  }
  return definition;
}

// A message sent again (a shared reply, one watch event to every watcher) is encoded once.
const encoded = new WeakMap<object, Buffer>();

function encodedOnce<D extends DescMessage>(schema: D, message: MessageShape<D>): Buffer {
  let bytes = encoded.get(message);
  if (bytes === undefined) encoded.set(message, (bytes = Buffer.from(toBinary(schema, message))));
  return bytes;
}

const framed = new WeakMap<object, Buffer>();

/** A streamed message as one gRPC length-prefixed frame (uncompressed), built once per message. */
export function frameOnce<D extends DescMessage>(schema: D, message: MessageShape<D>): Buffer {
  let frame = framed.get(message);
  if (frame === undefined) {
    const bytes = encodedOnce(schema, message);
    frame = Buffer.allocUnsafe(5 + bytes.length);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(bytes.length, 1);
    bytes.copy(frame, 5);
    framed.set(message, frame);
  }
  return frame;
}

/** The request message, or INVALID_ARGUMENT saying what is wrong with it (never echoing it). */
export function decodeRequest<D extends DescMessage>(schema: D, bytes: Buffer): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw new RpcError(`the message is not a valid ${schema.typeName}: ${binaryReason(err)}`, Code.InvalidArgument);
  }
}
