// One place that turns failures into gRPC statuses. Anything unexpected is
// INTERNAL with a generic message: internals never leak to clients.

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { KeySourceUnavailableError, TokenRejectedError } from "../auth/token-verifier.js";
import { EtagMismatchError, NotFoundError } from "../profiles/errors.js";
import { ValidationError } from "../profiles/validation.js";
import { DatabaseUnavailableError } from "../store/database.js";
import { ResumeTokenExpiredError } from "../events/watch-hub.js";

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof ValidationError) {
    return new ConnectError(err.message, Code.InvalidArgument, undefined, [
      { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [...err.violations] }) },
    ]);
  }
  if (err instanceof NotFoundError) return new ConnectError(err.message, Code.NotFound);
  if (err instanceof EtagMismatchError) return new ConnectError(err.message, Code.Aborted);
  if (err instanceof TokenRejectedError) return new ConnectError(err.message, Code.Unauthenticated);
  if (err instanceof KeySourceUnavailableError) {
    return new ConnectError("cannot verify tokens right now; retry later", Code.Unavailable);
  }
  if (err instanceof ResumeTokenExpiredError) return new ConnectError(err.message, Code.FailedPrecondition);
  if (err instanceof DatabaseUnavailableError) {
    return new ConnectError("the database is unavailable; retry later", Code.Unavailable);
  }
  // An aborted signal without a status of its own: the client went away or timed out.
  if (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError")) {
    return new ConnectError("the call was cancelled", Code.Canceled, undefined, undefined, err);
  }
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

export function permissionDenied(what: string): ConnectError {
  return new ConnectError(what, Code.PermissionDenied);
}
