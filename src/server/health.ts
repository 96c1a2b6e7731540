// gRPC health checking (grpc.health.v1): the serving status of each service,
// "" standing for the server as a whole, and the Health service that reports it.

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  type Health,
  type HealthCheckResponse,
} from "../../gen/health/v1/health_pb.js";

export { ServingStatus };

/** The name that stands for the whole server. */
export const OVERALL = "";

/**
 * The process is alive and serving its ports, whatever PostgreSQL does: for
 * Kubernetes' livenessProbe, so a database outage makes pods unready, never
 * restarts them all. SERVING from the start; NOT_SERVING only at shutdown.
 */
export const LIVENESS = "liveness";

type Listener = (status: ServingStatus) => void;

export class HealthStatus {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly everyChange = new Set<(service: string, status: ServingStatus) => void>();
  private shuttingDown = false;

  /** Registers `services` (and the overall status) as NOT_SERVING until told otherwise. */
  constructor(services: readonly string[] = []) {
    for (const service of [OVERALL, ...services]) this.statuses.set(service, ServingStatus.NOT_SERVING);
    this.statuses.set(LIVENESS, ServingStatus.SERVING);
  }

  /** Sets one service's status, registering it if new. Ignored once shutting down. */
  set(service: string, status: ServingStatus): void {
    if (this.shuttingDown) return;
    this.update(service, status);
  }

  /** Sets every registered service and the overall status (readiness; not LIVENESS). Ignored once shutting down. */
  setAll(status: ServingStatus): void {
    if (this.shuttingDown) return;
    for (const service of [...this.statuses.keys()]) if (service !== LIVENESS) this.update(service, status);
  }

  /**
   * Everything goes NOT_SERVING and stays so: a probe that still succeeds
   * must not advertise a server that is draining.
   */
  shutdown(): void {
    for (const service of [...this.statuses.keys()]) this.update(service, ServingStatus.NOT_SERVING);
    this.shuttingDown = true;
  }

  /** The status, or undefined for a service never registered. */
  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  all(): ReadonlyMap<string, ServingStatus> {
    return this.statuses;
  }

  /** Calls `listener` on every change of `service`'s status until the returned function is called. */
  watch(service: string, listener: Listener): () => void {
    let set = this.listeners.get(service);
    if (set === undefined) this.listeners.set(service, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(service) === set) this.listeners.delete(service);
    };
  }

  /** Calls `listener` on every change of any service's status, services registered later included. */
  watchAll(listener: (service: string, status: ServingStatus) => void): () => void {
    this.everyChange.add(listener);
    return () => this.everyChange.delete(listener);
  }

  private update(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const listener of this.listeners.get(service) ?? []) listener(status);
    for (const listener of this.everyChange) listener(service, status);
  }
}

export function healthService(health: HealthStatus): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const status = health.get(req.service);
      if (status === undefined) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return { status };
    },

    list() {
      const statuses: Record<string, HealthCheckResponse> = {};
      for (const [service, status] of health.all()) statuses[service] = create(HealthCheckResponseSchema, { status });
      return { statuses };
    },

    watch(req, ctx) {
      return watchStatus(health, req.service, ctx);
    },
  };
}

/**
 * The current status at once (SERVICE_UNKNOWN for an unknown service, without
 * ending the call, as the spec says), then each change, until the call ends.
 */
async function* watchStatus(
  health: HealthStatus,
  service: string,
  ctx: HandlerContext,
): AsyncGenerator<HealthCheckResponse> {
  let latest = health.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
  let wake: (() => void) | undefined;
  const unwatch = health.watch(service, (status) => {
    latest = status;
    wake?.();
  });
  const onAbort = () => wake?.();
  ctx.signal.addEventListener("abort", onAbort);
  try {
    let sent: ServingStatus | undefined;
    while (!ctx.signal.aborted) {
      if (latest !== sent) {
        sent = latest;
        yield create(HealthCheckResponseSchema, { status: sent });
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    // Ended by the client, a deadline or shutdown: answer with that reason, never INTERNAL.
    throw ConnectError.from(ctx.signal.reason, Code.Canceled);
  } finally {
    unwatch();
    ctx.signal.removeEventListener("abort", onAbort);
  }
}
