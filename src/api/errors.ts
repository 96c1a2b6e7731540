// One place that turns failures into statuses. Anything unexpected is
// INTERNAL with a generic message: internals never leak to clients.

import { KeySourceUnavailableError, TokenRejectedError } from "../auth/token-verifier.js";
import {
  ResumeTokenExpiredError,
  UnusableResumeTokenError,
  WatchLimitError,
  WatchShutdownError,
} from "../events/watch-errors.js";
import { EtagMismatchError, NotFoundError } from "../profiles/errors.js";
import { DatabaseBusyError, DatabaseUnavailableError } from "../store/database.js";
import { abortReason } from "./abortable.js";
import { Code, RpcError } from "./status.js";
import { ValidationError } from "./validation.js";

export function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (err instanceof ValidationError) return new RpcError(err.message, Code.InvalidArgument, err.violations);
  if (err instanceof NotFoundError) return new RpcError(err.message, Code.NotFound);
  if (err instanceof EtagMismatchError) return new RpcError(err.message, Code.Aborted);
  if (err instanceof TokenRejectedError) return new RpcError(err.message, Code.Unauthenticated);
  if (err instanceof KeySourceUnavailableError) {
    return new RpcError("cannot verify tokens right now; retry later", Code.Unavailable);
  }
  if (err instanceof ResumeTokenExpiredError || err instanceof UnusableResumeTokenError) {
    return new RpcError(err.message, Code.FailedPrecondition);
  }
  if (err instanceof WatchLimitError) return new RpcError(err.message, Code.ResourceExhausted);
  if (err instanceof WatchShutdownError) return new RpcError(err.message, Code.Unavailable);
  if (err instanceof DatabaseBusyError) return new RpcError(err.message, Code.ResourceExhausted);
  if (err instanceof DatabaseUnavailableError) {
    return new RpcError("the database is unavailable; retry later", Code.Unavailable);
  }
  // An aborted signal without a status of its own: the client went away or timed out.
  if (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError")) {
    return new RpcError("the call was cancelled", Code.Canceled, [], { cause: err });
  }
  return new RpcError("internal error", Code.Internal, [], { cause: err });
}

/**
 * The status a failed call ends with. Once the call's signal has aborted (the
 * client cancelled or went away, its deadline passed, or the server is
 * shutting down), a failure we cannot name is the abort's doing, not a fault
 * of ours: it gets the abort's status, never INTERNAL.
 */
export function statusOf(err: unknown, signal: AbortSignal): RpcError {
  const mapped = toRpcError(err);
  if (!signal.aborted || (mapped.code !== Code.Internal && mapped.code !== Code.Unknown)) return mapped;
  return cancellationOf(signal);
}

/**
 * Why a call was cut short: its signal's reason (DEADLINE_EXCEEDED,
 * UNAVAILABLE at shutdown, CANCELLED when the client reset the stream or went
 * away), or CANCELLED when the signal has not aborted (the response side was
 * closed under us).
 */
export function cancellationOf(signal: AbortSignal): RpcError {
  if (!signal.aborted) return new RpcError("the client went away", Code.Canceled);
  return toRpcError(abortReason(signal));
}
