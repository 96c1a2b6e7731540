// What a gRPC error means to a caller: retry it, resume after it, or stop.

import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

export function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === "number" && "metadata" in err;
}

/** The gRPC status of an error, or undefined when it is not a gRPC error. */
export function codeOf(err: unknown): grpc.status | undefined {
  return isServiceError(err) ? err.code : undefined;
}

/**
 * After these, the same watch request would fail again: fix the request or
 * the token (or, for a refused token, re-read and watch from now). Every
 * other code is worth resuming, codes the service never sends included: a
 * proxy in between can end a stream with anything (HAProxy ends a stream cut
 * by a crashed replica cleanly, and grpc-js calls that INTERNAL).
 */
export const FINAL_WATCH_CODES: ReadonlySet<grpc.status> = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.FAILED_PRECONDITION,
]);

/** The fields named by the error's google.rpc.BadRequest details. */
export function violatedFields(err: grpc.ServiceError): string[] {
  const raw = err.metadata?.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Buffer)) return [];
  try {
    const status = fromBinary(StatusSchema, raw);
    return status.details.flatMap((any) => anyUnpack(any, BadRequestSchema)?.fieldViolations.map((v) => v.field) ?? []);
  } catch {
    return [];
  }
}

/**
 * The watch refused our resume token: FAILED_PRECONDITION (older than the
 * retention, from another event log, or ahead of this one), or
 * INVALID_ARGUMENT on `resume_token` (not a token this service can read: a
 * replica of the previous release during a rolling upgrade, or a stored token
 * that got corrupted). Either way, resuming from it can never work, and the
 * way out is the same: re-read, then watch from now.
 */
export function refusesToken(err: grpc.ServiceError): boolean {
  if (err.code === grpc.status.FAILED_PRECONDITION) return true;
  return err.code === grpc.status.INVALID_ARGUMENT && violatedFields(err).includes("resume_token");
}
