// The Connect transport's per-call interceptor: it starts the call's record
// (api/observe.ts), gives ProfileService calls their RpcContext, and records
// the status each call really ended with, streams included.

import { type ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { raceSignal } from "../api/abortable.js";
import { cancellationOf, statusOf } from "../api/errors.js";
import type { Finish, RpcObserver } from "../api/observe.js";
import { OK, RpcError } from "../api/status.js";
import { endingSpan, tracing, type RpcSpan } from "../tracing/tracing.js";
import { connectRpcContext, nodeRequestKey, rpcContextKey } from "./connect-context.js";
import { fromConnectError, rpcSignal, toConnectError } from "./connect-errors.js";
import { transportSignalKey } from "./transport-signal.js";

export function connectObserver(observer: RpcObserver, apiServices: ReadonlySet<string>): Interceptor {
  return (next) => async (req) => {
    const signal = rpcSignal(req.signal);
    let call: { cacheStatus: "none"; targetUser: undefined } | ReturnType<typeof connectRpcContext> = {
      cacheStatus: "none",
      targetUser: undefined,
    };
    const api = apiServices.has(req.service.typeName);
    // Probes and reflection are not traced, as on the gRPC port.
    const span = tracing() === undefined || !api ? undefined : rpcSpan(req);
    if (api) {
      call = connectRpcContext(req.contextValues, signal, req.header.get("authorization"));
      call.span = span;
      req.contextValues.set(rpcContextKey, call);
    }
    const finish = endingSpan(observer.start(req.method, call), span);
    try {
      // Expired or cancelled on arrival (grpc-timeout: 0m, connect-timeout-ms: 0): no work is started for it.
      if (signal.aborted) throw cancellationOf(signal);
      const res = req.stream ? await next(req) : await raceSignal(next(req), signal);
      if (!res.stream) {
        finish(OK);
        return res;
      }
      const closed = req.contextValues.get(transportSignalKey);
      return { ...res, message: observeStream(res.message, signal, closed, finish) } satisfies StreamResponse;
    } catch (err) {
      const mapped = statusOf(fromConnectError(err), signal);
      finish(mapped.code, mapped);
      throw toConnectError(mapped);
    }
  };
}

/**
 * Passes the handler's messages on, and records how the stream ended: OK, the
 * handler's error, or (when the client cancelled, its deadline passed, the
 * write side failed, or the stream was cut short) the cancellation, never OK.
 */
async function* observeStream<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal,
  closed: AbortSignal | undefined,
  finish: Finish,
): AsyncGenerator<T> {
  let finished = false;
  let writing = false;
  const end = (err: ReturnType<typeof cancellationOf>): ConnectError => {
    finished = true;
    finish(err.code, err);
    return toConnectError(err);
  };
  try {
    for await (const message of source) {
      writing = true;
      yield message;
      writing = false;
    }
    finished = true;
    // A handler that stops when its signal aborts (a watch whose client went
    // away) returns normally; the call still did not succeed.
    if (signal.aborted) end(cancellationOf(signal));
    // A handler that ends when its requests end (reflection) returns as soon
    // as the client half-closes, which grpc-js does just before it resets the
    // stream to cancel. OK only once the stream has closed without a reset.
    else if (closed !== undefined) whenAborted(closed, () => finishClosed(closed, finish));
    else finish(OK);
  } catch (err) {
    // Thrown in at a yield: the response could not be written (the client went away, or its stream was reset).
    throw end(writing ? cancellationOf(signal) : statusOf(fromConnectError(err), signal));
  } finally {
    // Closed early without an error: the client went away mid-stream.
    if (!finished) end(cancellationOf(signal));
  }
}

function rpcSpan(req: Parameters<Parameters<Interceptor>[0]>[0]): RpcSpan | undefined {
  const node = req.contextValues.get(nodeRequestKey);
  const socket = node === undefined ? undefined : "stream" in node ? node.stream.session?.socket : node.socket;
  return tracing()?.rpc({
    service: req.service.typeName,
    method: req.method.name,
    traceparent: req.header.get("traceparent") ?? undefined,
    tracestate: req.header.get("tracestate") ?? undefined,
    peerAddress: socket?.remoteAddress,
    peerPort: socket?.remotePort,
  });
}

function whenAborted(signal: AbortSignal, then: () => void): void {
  if (signal.aborted) then();
  else signal.addEventListener("abort", then, { once: true });
}

function finishClosed(closed: AbortSignal, finish: Finish): void {
  const reason = fromConnectError(closed.reason);
  if (reason instanceof RpcError) finish(reason.code, reason);
  else finish(OK);
}
