// Between our RpcError and Connect-ES' ConnectError. The codes are gRPC's on
// both sides, so only the shape changes; field violations travel as
// google.rpc.BadRequest details.

import { create } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { RpcError } from "../api/status.js";

export function toConnectError(err: RpcError): ConnectError {
  const details =
    err.violations.length === 0
      ? undefined
      : [{ desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [...err.violations] }) }];
  return new ConnectError(err.message, err.code, undefined, details, err);
}

/** A ConnectError (Connect-ES' own, or a signal reason) as an RpcError; anything else unchanged. */
export function fromConnectError(err: unknown): unknown {
  if (!(err instanceof ConnectError)) return err;
  // One of ours, on its way back out through the interceptors.
  if (err.cause instanceof RpcError) return err.cause;
  return new RpcError(err.rawMessage, err.code, [], { cause: err.cause ?? err });
}

/** A signal that follows `signal`, with its reason as an RpcError. */
export function rpcSignal(signal: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const follow = () => controller.abort(fromConnectError(signal.reason));
  if (signal.aborted) follow();
  else signal.addEventListener("abort", follow, { once: true });
  return controller.signal;
}
