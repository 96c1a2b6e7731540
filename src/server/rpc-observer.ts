// Per-RPC bookkeeping: one log line, the latency histograms, the grpc_server_*
// counters, and the mapping of every failure to a precise status (see errors.ts).

import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { errorSummary, type Logger } from "../log/logger.js";
import type { GrpcType, Metrics } from "../metrics/metrics.js";
import { cacheStatusKey, targetUserKey } from "./context.js";
import { toConnectError } from "./errors.js";

/** Connect's Code has no member for success; gRPC calls it OK (0). */
const OK = 0 as Code;

export function codeName(code: Code): string {
  return code === OK ? "OK" : (Code[code] ?? String(code));
}

/**
 * `apiServices` are the services whose calls count as API calls: they get
 * api_response_time_seconds and info-level log lines. Health checks and
 * reflection log at debug, so probes do not drown the log.
 */
export function rpcObserver(metrics: Metrics, log: Logger, apiServices: ReadonlySet<string>): Interceptor {
  return (next) => async (req) => {
    const api = apiServices.has(req.service.typeName);
    const started = performance.now();
    const rpc = { grpc_service: req.service.typeName, grpc_method: req.method.name, grpc_type: grpcTypeOf(req.method) };
    metrics.grpcStarted.inc(rpc);
    const finish = (code: Code, err?: ConnectError) => {
      const seconds = (performance.now() - started) / 1000;
      const cacheStatus = req.contextValues.get(cacheStatusKey);
      if (api) metrics.apiResponseTime.observe({ endpoint: endpointOf(req.method.name), cache_status: cacheStatus }, seconds);
      metrics.grpcHandled.inc({ ...rpc, grpc_code: codeName(code) });
      metrics.grpcHandlingSeconds.observe(rpc, seconds);
      const line = {
        method: `${req.service.typeName}/${req.method.name}`,
        code: codeName(code),
        duration_ms: Math.round(seconds * 100_000) / 100,
        cache: cacheStatus,
        user_id: req.contextValues.get(targetUserKey),
      };
      if (code === Code.Internal || code === Code.Unknown) {
        log.error({ ...line, err: errorSummary(err?.cause ?? err) }, "rpc failed");
      } else if (api) {
        log.info(line, "rpc");
      } else {
        log.debug(line, "rpc");
      }
    };
    try {
      const res = req.stream ? await next(req) : await abortable(next(req), req.signal);
      if (!res.stream) {
        finish(OK);
        return res;
      }
      return { ...res, message: observeStream(res, finish) } satisfies StreamResponse;
    } catch (err) {
      const mapped = toConnectError(err);
      finish(mapped.code, mapped);
      throw mapped;
    }
  };
}

// A unary handler does not watch its signal; this makes it answer as soon as
// the signal aborts, with the signal's reason (UNAVAILABLE at shutdown).
function abortable<T>(call: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    call.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err as Error);
      },
    );
  });
}

async function* observeStream(res: StreamResponse, finish: (code: Code, err?: ConnectError) => void) {
  let finished = false;
  try {
    yield* res.message;
    finished = true;
    finish(OK);
  } catch (err) {
    const mapped = toConnectError(err);
    finished = true;
    finish(mapped.code, mapped);
    throw mapped;
  } finally {
    // Closed early without an error: the client went away mid-stream.
    if (!finished) finish(Code.Canceled);
  }
}

const grpcTypes: Record<DescMethod["methodKind"], GrpcType> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

function grpcTypeOf(method: DescMethod): GrpcType {
  return grpcTypes[method.methodKind];
}

const endpoints = new Map<string, string>();

/** GetProfile → get_profile, the seed's endpoint label style. */
function endpointOf(method: string): string {
  let e = endpoints.get(method);
  if (e === undefined) {
    e = method.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
    endpoints.set(method, e);
  }
  return e;
}
