// The Tracing seam (tracing.ts) on the OpenTelemetry API: server spans with
// the gRPC semantic conventions, child spans of the active span, and the
// traceparent a write records in its outbox row. Loaded only when tracing is
// on (start.ts imports it with the SDK).

import {
  context,
  defaultTextMapGetter,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_TRANSPORT,
} from "@opentelemetry/semantic-conventions";
import type { DeliveredEvent, RpcSpan, RpcSpanStart, SpanNotes, Tracing } from "./tracing.js";

// The gRPC semantic conventions (still "development" there, so not in the package's stable entry point).
const ATTR_RPC_SYSTEM = "rpc.system";
const ATTR_RPC_SERVICE = "rpc.service";
const ATTR_RPC_METHOD = "rpc.method";
const ATTR_RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code";

// What a server span marks as an error, per the gRPC conventions: the server's own failures, not the caller's.
const SERVER_ERRORS: ReadonlySet<number> = new Set([2, 4, 12, 13, 14, 15]);

const NO_NOTES: SpanNotes = { set: () => {} };

// The caller's context comes from W3C headers whatever OTEL_PROPAGATORS says: the contract names them.
const w3c = new W3CTraceContextPropagator();

function extracted(traceparent: string, tracestate?: string): Context {
  return w3c.extract(ROOT_CONTEXT, { traceparent, tracestate }, defaultTextMapGetter);
}

export class OtelTracing implements Tracing {
  constructor(private readonly tracer: Tracer) {}

  rpc(start: RpcSpanStart): RpcSpan {
    const parent = start.traceparent === undefined ? ROOT_CONTEXT : extracted(start.traceparent, start.tracestate);
    const attributes: Attributes = {
      [ATTR_RPC_SYSTEM]: "grpc",
      [ATTR_RPC_SERVICE]: start.service,
      [ATTR_RPC_METHOD]: start.method,
      [ATTR_NETWORK_TRANSPORT]: "tcp",
    };
    if (start.peerAddress !== undefined) attributes[ATTR_NETWORK_PEER_ADDRESS] = start.peerAddress;
    if (start.peerPort !== undefined) attributes[ATTR_NETWORK_PEER_PORT] = start.peerPort;
    const span = this.tracer.startSpan(
      `${start.service}/${start.method}`,
      { kind: SpanKind.SERVER, attributes },
      parent,
    );
    return new OtelRpcSpan(this.tracer, span, trace.setSpan(parent, span));
  }

  child<T>(name: string, fn: (notes: SpanNotes) => Promise<T>): Promise<T> {
    // Work outside any call (warm-up, background reads) gets no trace of its own.
    if (trace.getSpan(context.active()) === undefined) return fn(NO_NOTES);
    return this.tracer.startActiveSpan(name, async (span) => {
      try {
        return await fn({ set: (attributes) => span.setAttributes(attributes) });
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : "error" });
        throw err;
      } finally {
        span.end();
      }
    });
  }

  traceparent(): string | null {
    const sc = trace.getSpan(context.active())?.spanContext();
    if (sc === undefined || !isSpanContextValid(sc) || (sc.traceFlags & TraceFlags.SAMPLED) === 0) return null;
    return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, "0")}`;
  }
}

class OtelRpcSpan implements RpcSpan {
  private ended = false;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
    private readonly ctx: Context,
  ) {}

  run<T>(fn: () => T): T {
    return context.with(this.ctx, fn);
  }

  end(code: number, message?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.span.setAttribute(ATTR_RPC_GRPC_STATUS_CODE, code);
    if (SERVER_ERRORS.has(code)) this.span.setStatus({ code: SpanStatusCode.ERROR, message });
    this.span.end();
  }

  delivery(event: DeliveredEvent): { end(): void } {
    const links: Link[] = [];
    if (event.writtenBy !== undefined) {
      const written = trace.getSpanContext(extracted(event.writtenBy));
      if (written !== undefined && isSpanContextValid(written)) links.push({ context: written });
    }
    return this.tracer.startSpan(
      `deliver ${event.type}`,
      {
        kind: SpanKind.PRODUCER,
        links,
        attributes: {
          "messaging.operation.type": "send",
          "messaging.destination.name": "WatchProfileEvents",
          "messaging.message.id": event.eventId,
        },
      },
      this.ctx,
    );
  }
}
