// The statuses the API answers with, in gRPC's own terms. Each transport
// turns an RpcError into its wire form (grpc-js status and metadata,
// Connect-ES' ConnectError); nothing in the API layer knows either library.

/** gRPC status codes (numbers as on the wire), named as Go's codes.Code and Connect-ES name them. */
export enum Code {
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** Success has no member in Code (a failed call always has one). */
export const OK = 0;
export type StatusCode = Code | typeof OK;

export interface FieldViolation {
  field: string;
  description: string;
}

/** A call's failure, as the client will see it. `violations` travel as google.rpc.BadRequest. */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly code: Code,
    readonly violations: readonly FieldViolation[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RpcError";
  }
}
