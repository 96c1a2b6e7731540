// The steps every ProfileService call takes, whichever transport carries it:
// a call that arrives already expired or cancelled starts no work; the token
// is verified before the request message is even decoded (so a caller
// without a valid token learns nothing from our decoder); then the handler
// runs (authorize, validate, call the domain); every failure leaves as an
// RpcError with a precise status.

import type { TokenVerifier } from "../auth/token-verifier.js";
import { raceSignal } from "./abortable.js";
import { authenticate } from "./authenticate.js";
import type { RpcContext } from "./context.js";
import { cancellationOf, statusOf } from "./errors.js";
import type { RpcError } from "./status.js";

/** A request as the transport received it: decoding may fail with INVALID_ARGUMENT (an RpcError). */
export type DecodeRequest<I> = () => I;

export type UnaryHandler<I, O> = (req: I, ctx: RpcContext) => Promise<O>;
export type StreamHandler<I, O> = (req: I, ctx: RpcContext) => AsyncIterable<O>;

export class Calls {
  constructor(private readonly verifier: TokenVerifier) {}

  /** Rejects only with an RpcError. The handler's own promise is always handled, even once nobody waits for it. */
  unary<I, O>(handler: UnaryHandler<I, O>, ctx: RpcContext, decode: DecodeRequest<I>): Promise<O> {
    // With tracing on, what the handler calls (the cache, Redis, PostgreSQL) becomes the call's span's children.
    const span = ctx.span;
    return span === undefined
      ? this.runUnary(handler, ctx, decode)
      : span.run(() => this.runUnary(handler, ctx, decode));
  }

  private async runUnary<I, O>(handler: UnaryHandler<I, O>, ctx: RpcContext, decode: DecodeRequest<I>): Promise<O> {
    try {
      if (ctx.signal.aborted) throw cancellationOf(ctx.signal);
      return await raceSignal(this.start(handler, ctx, decode), ctx.signal);
    } catch (err) {
      throw statusOf(err, ctx.signal) satisfies RpcError;
    }
  }

  /** Fails only with an RpcError, before the first message or between messages. */
  async *stream<I, O>(handler: StreamHandler<I, O>, ctx: RpcContext, decode: DecodeRequest<I>): AsyncGenerator<O> {
    try {
      if (ctx.signal.aborted) throw cancellationOf(ctx.signal);
      ctx.caller = await raceSignal(authenticate(this.verifier, ctx.authorization), ctx.signal);
      yield* handler(decode(), ctx);
    } catch (err) {
      throw statusOf(err, ctx.signal);
    }
  }

  private async start<I, O>(handler: UnaryHandler<I, O>, ctx: RpcContext, decode: DecodeRequest<I>): Promise<O> {
    ctx.caller = await authenticate(this.verifier, ctx.authorization);
    return handler(decode(), ctx);
  }
}
