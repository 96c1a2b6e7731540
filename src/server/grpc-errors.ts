// An RpcError as grpc-js sends it: code, message, and the field violations as
// google.rpc.Status details in grpc-status-details-bin, as grpc-go does.

import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import type { RpcError } from "../api/status.js";

export function toGrpcStatus(err: RpcError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (err.violations.length > 0) {
    const details = anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations: [...err.violations] }));
    const status = create(StatusSchema, { code: err.code, message: err.message, details: [details] });
    metadata.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, status)));
  }
  return { code: err.code as number, details: err.message, metadata };
}
