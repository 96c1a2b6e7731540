// Per-RPC bookkeeping, the same on every transport: one log line, the
// latency histograms and the grpc_server_* counters, with the status each
// call really ended with.

import type { DescMethod } from "@bufbuild/protobuf";
import { errorSummary, withoutRedaction, type Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { codeName, rpcLabels } from "../metrics/rpc-labels.js";
import type { RpcContext } from "./context.js";
import { Code, type RpcError, type StatusCode } from "./status.js";

/** Ends the call's record; the first call counts, later ones are ignored. */
export type Finish = (code: StatusCode, err?: RpcError) => void;

type Observed = Pick<RpcContext, "cacheStatus" | "targetUser">;

export class RpcObserver {
  /**
   * `apiServices` are the services whose calls count as API calls: they get
   * api_response_time_seconds and info-level log lines. Health checks and
   * reflection log at debug, so probes do not drown the log.
   */
  private readonly log: Logger;

  constructor(
    private readonly metrics: Metrics,
    log: Logger,
    private readonly apiServices: ReadonlySet<string>,
  ) {
    // Its fields are fixed (method, status, timing, a user id) and never request data.
    this.log = withoutRedaction(log);
  }

  // Label sets and names per method, built once: every call would otherwise allocate them again.
  private readonly perMethod = new Map<DescMethod, MethodLabels>();

  /** Starts a call's record; `call` is read when it finishes (its cache status and target user). */
  start(method: DescMethod, call: Observed): Finish {
    const started = performance.now();
    const labels = this.labelsOf(method);
    this.metrics.grpcStarted.inc(labels.rpc);
    let finished = false;
    return (code, err) => {
      if (finished) return;
      finished = true;
      const seconds = (performance.now() - started) / 1000;
      const ended: Observed = { cacheStatus: call.cacheStatus, targetUser: call.targetUser };
      // The status is about to be sent (from inside the HTTP/2 send loop):
      // the record waits a turn, so the reply does not wait for it.
      setImmediate(() => this.record(labels, code, err, seconds, ended));
    };
  }

  private record(
    labels: MethodLabels,
    code: StatusCode,
    err: RpcError | undefined,
    seconds: number,
    { cacheStatus, targetUser }: Observed,
  ): void {
    const { rpc, api } = labels;
    if (api) this.metrics.apiResponseTime.observe(labels.response(cacheStatus), seconds);
    this.metrics.grpcHandled.inc(labels.handled(code));
    this.metrics.grpcHandlingSeconds.observe(rpc, seconds);
    const line = {
      method: labels.name,
      code: codeName(code),
      duration_ms: Math.round(seconds * 100_000) / 100,
      cache: cacheStatus,
      user_id: targetUser,
    };
    if (code === Code.Internal || code === Code.Unknown) {
      this.log.error({ ...line, err: errorSummary(err?.cause ?? err) }, "rpc failed");
    } else if (api) {
      this.log.info(line, "rpc");
    } else {
      this.log.debug(line, "rpc");
    }
  }

  private labelsOf(method: DescMethod): MethodLabels {
    let labels = this.perMethod.get(method);
    if (labels === undefined) {
      labels = methodLabels(method, this.apiServices.has(method.parent.typeName));
      this.perMethod.set(method, labels);
    }
    return labels;
  }
}

interface MethodLabels {
  readonly rpc: ReturnType<typeof rpcLabels>;
  readonly api: boolean;
  readonly name: string;
  handled(code: StatusCode): ReturnType<typeof rpcLabels> & { grpc_code: string };
  response(cacheStatus: Observed["cacheStatus"]): { endpoint: string; cache_status: Observed["cacheStatus"] };
}

function methodLabels(method: DescMethod, api: boolean): MethodLabels {
  const rpc = rpcLabels(method);
  const endpoint = endpointOf(method.name);
  const handled = new Map<StatusCode, ReturnType<MethodLabels["handled"]>>();
  const response = new Map<Observed["cacheStatus"], ReturnType<MethodLabels["response"]>>();
  return {
    rpc,
    api,
    name: `${method.parent.typeName}/${method.name}`,
    handled(code) {
      let l = handled.get(code);
      if (l === undefined) handled.set(code, (l = { ...rpc, grpc_code: codeName(code) }));
      return l;
    },
    response(cacheStatus) {
      let l = response.get(cacheStatus);
      if (l === undefined) response.set(cacheStatus, (l = { endpoint, cache_status: cacheStatus }));
      return l;
    },
  };
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
