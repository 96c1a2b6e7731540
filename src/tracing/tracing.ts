// The seam between the service and OpenTelemetry. Tracing is off unless
// OTEL_EXPORTER_OTLP_ENDPOINT is set (start.ts); off, nothing here holds a
// tracer and no OpenTelemetry package is loaded, so each call site below pays
// one read of `current` and nothing else. On, start.ts has loaded the SDK
// (sdk.ts) and installed its Tracing here. This file imports no package, so
// the hot path never loads one.

/** What a transport knows of a call when it arrives. */
export interface RpcSpanStart {
  /** The proto service, e.g. profile.v1.ProfileService. */
  readonly service: string;
  /** The method's proto name, e.g. GetProfile. */
  readonly method: string;
  /** The caller's W3C trace context headers, if any. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  readonly peerAddress: string | undefined;
  readonly peerPort: number | undefined;
}

/** The server span of one RPC. */
export interface RpcSpan {
  /** Runs `fn` with this span as the active one, so what it calls becomes its children. */
  run<T>(fn: () => T): T;
  /** Ends the span with the call's gRPC status; later calls are ignored. */
  end(code: number, message?: string): void;
  /**
   * A span under this one, for handing one watch event to its caller, linked
   * to the span of the write that caused it (`writtenBy`, a traceparent).
   */
  delivery(event: DeliveredEvent): { end(): void };
}

export interface DeliveredEvent {
  readonly eventId: string;
  readonly type: string;
  readonly writtenBy: string | undefined;
}

/** Attributes a child span learns while it runs. */
export interface SpanNotes {
  set(attributes: Record<string, string | number | boolean | readonly string[]>): void;
}

export interface Tracing {
  rpc(start: RpcSpanStart): RpcSpan;
  /** Runs `fn` in a child span of the active span (none without one). */
  child<T>(name: string, fn: (notes: SpanNotes) => Promise<T>): Promise<T>;
  /** The traceparent of the active span, or null without one (or when it is not sampled). */
  traceparent(): string | null;
}

let current: Tracing | undefined;

/** The installed tracing, or undefined when it is off. */
export function tracing(): Tracing | undefined {
  return current;
}

/** Installs (or, with undefined, removes) the tracing every call site reads. */
export function installTracing(t: Tracing | undefined): void {
  current = t;
}

/** Runs `fn`, in a child span named `name` when tracing is on. */
export function inSpan<T>(name: string, fn: () => Promise<T>): Promise<T> {
  return current === undefined ? fn() : current.child(name, fn);
}

/** The active span's traceparent, for the outbox row a write appends; null when off. */
export function activeTraceparent(): string | null {
  return current === undefined ? null : current.traceparent();
}

/** `finish`, ending `span` too when there is one (a call's record and its span end together). */
export function endingSpan<C extends number, E extends { message: string }>(
  finish: (code: C, err?: E) => void,
  span: RpcSpan | undefined,
): (code: C, err?: E) => void {
  if (span === undefined) return finish;
  return (code, err) => {
    finish(code, err);
    span.end(code, err?.message);
  };
}
