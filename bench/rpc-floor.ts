// F-rpc: the cheapest call through the same server stack. The health service
// (grpc.health.v1.Health/Check) lands on another branch; until then the
// cheapest path the real binary has is a ProfileService call without a token,
// which the auth interceptor rejects with UNAUTHENTICATED before any handler
// or store runs. It still pays for HTTP/2, Connect routing, request decoding,
// the RPC observer (log line and histogram) and the error reply. Swapping in
// Health/Check later means replacing RPC_FLOOR only.

import { create, toBinary } from "@bufbuild/protobuf";
import { GetProfileRequestSchema } from "../gen/profile/v1/profile_pb.js";
import { grpcFrame, GrpcStatus } from "./grpc-wire.js";
import type { FixedCall } from "./fixed-call-load.js";

export interface RpcFloor {
  readonly label: string;
  /** Log code of the floor's reply, for the server-side status tally. */
  readonly logCode: string;
  readonly expectStatus: number;
  /** The floor call; `requestLike` is the target's user id, so both send the same bytes. */
  call(requestLike: string): FixedCall;
}

export const RPC_FLOOR: RpcFloor = {
  label: "GetProfile without a token (UNAUTHENTICATED in the auth interceptor); Health/Check is not on this branch",
  logCode: "Unauthenticated",
  expectStatus: GrpcStatus.UNAUTHENTICATED,
  call: (userId) => ({
    path: "/profile.v1.ProfileService/GetProfile",
    frame: grpcFrame(toBinary(GetProfileRequestSchema, create(GetProfileRequestSchema, { userId }))),
    headers: {},
  }),
};
