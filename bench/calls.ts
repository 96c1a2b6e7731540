// The unary calls the bench sends, as wire bytes built once, in either
// protocol: gRPC (a 5-byte prefix, then the message) or Connect (the bare
// message, `content-type: application/proto`). Each call knows what its reply
// must be, so a sample call checks it before a run.

import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import {
  BatchGetProfilesRequestSchema,
  BatchGetProfilesResponseSchema,
  GetProfileRequestSchema,
  GetProfileResponseSchema,
  UpdateProfileRequestSchema,
  UpdateProfileResponseSchema,
} from "../gen/profile/v1/profile_pb.js";
import type { Protocol } from "./service.js";

export interface Call {
  protocol: Protocol;
  path: string;
  /** The request body on the wire. */
  body: Buffer;
  /** Extra headers (authorization). */
  headers: Readonly<Record<string, string>>;
  /** Throws unless `message` (the reply, unframed) is the answer this call asks for. */
  expect(message: Uint8Array): void;
}

/** The headers every call of a protocol carries (h2load sends them too). */
export function protocolHeaders(protocol: Protocol): Record<string, string> {
  return protocol === "grpc"
    ? { "content-type": "application/grpc", te: "trailers" }
    : { "content-type": "application/proto", "connect-protocol-version": "1" };
}

export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** The reply's bytes on the wire, for a message of `length` bytes. */
export const wireLength = (protocol: Protocol, length: number) => (protocol === "grpc" ? 5 + length : length);

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const PROFILE_SERVICE = "/profile.v1.ProfileService";

function call<D extends DescMessage>(
  protocol: Protocol,
  method: string,
  schema: D,
  init: MessageInitShape<D>,
  token: string,
  expect: (message: Uint8Array) => void,
): Call {
  const message = toBinary(schema, create(schema, init));
  const body = protocol === "grpc" ? grpcFrame(message) : Buffer.from(message);
  return { protocol, path: `${PROFILE_SERVICE}/${method}`, body, headers: bearer(token), expect };
}

export function getProfile(protocol: Protocol, userId: string, token: string): Call {
  return call(protocol, "GetProfile", GetProfileRequestSchema, { userId }, token, (m) => {
    const got = fromBinary(GetProfileResponseSchema, m).profile?.userId;
    if (got !== userId) throw new Error(`GetProfile(${userId}) answered profile ${got}`);
  });
}

export function batchGetProfiles(protocol: Protocol, userIds: string[], token: string): Call {
  return call(protocol, "BatchGetProfiles", BatchGetProfilesRequestSchema, { userIds }, token, (m) => {
    const n = fromBinary(BatchGetProfilesResponseSchema, m).profiles.length;
    if (n !== userIds.length) throw new Error(`BatchGetProfiles of ${userIds.length} ids answered ${n} profiles`);
  });
}

export function updateFirstName(protocol: Protocol, userId: string, firstName: string, token: string): Call {
  const init = { userId, profile: { firstName }, updateMask: { paths: ["first_name"] } };
  return call(protocol, "UpdateProfile", UpdateProfileRequestSchema, init, token, (m) => {
    const got = fromBinary(UpdateProfileResponseSchema, m).profile?.firstName;
    if (got !== firstName) throw new Error(`UpdateProfile to ${firstName} answered ${got}`);
  });
}
