// F-rpc: the cheapest successful call through the same server stack,
// grpc.health.v1.Health/Check (same listener, adapter and interceptors).
//
// An earlier version used GetProfile without a token (UNAUTHENTICATED in the
// auth interceptor). It is no floor: building and serializing the error costs
// more than a cache hit once verified tokens are cached, so the bench still
// reports it, as "F-rpc (UNAUTHENTICATED)", for comparison only.

import { create, toBinary } from "@bufbuild/protobuf";
import { GetProfileRequestSchema } from "../gen/profile/v1/profile_pb.js";
import type { FixedCall } from "./fixed-call-load.js";
import { grpcFrame, GrpcStatus } from "./grpc-wire.js";
import { HealthCheckRequestSchema } from "../gen/health/v1/health_pb.js";

export interface RpcFloor {
  readonly label: string;
  /** Log code of the floor's reply, for the server-side status tally. */
  readonly logCode: string;
  readonly expectStatus: number;
  readonly call: FixedCall;
}

export const RPC_FLOOR: RpcFloor = {
  label: "grpc.health.v1.Health/Check",
  logCode: "OK",
  expectStatus: GrpcStatus.OK,
  call: {
    path: "/grpc.health.v1.Health/Check",
    frame: grpcFrame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema))),
    headers: {},
  },
};

/** Not a floor (see above); measured next to it for comparison. */
export function unauthenticatedGetProfile(userId: string): RpcFloor {
  return {
    label: "GetProfile without a token: UNAUTHENTICATED from the auth interceptor",
    logCode: "Unauthenticated",
    expectStatus: GrpcStatus.UNAUTHENTICATED,
    call: {
      path: "/profile.v1.ProfileService/GetProfile",
      frame: grpcFrame(toBinary(GetProfileRequestSchema, create(GetProfileRequestSchema, { userId }))),
      headers: {},
    },
  };
}
