// ProfileService on Connect-ES: each method hands its call to the API layer
// (api/call.ts, api/service.ts) and turns what comes back into Connect's
// terms. A request Connect-ES could not decode reaches the handler as an
// empty message plus the problem (request-decoding.ts); the API reports it
// after authentication, like any other INVALID_ARGUMENT.

import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { ProfileService } from "../../gen/profile/v1/profile_pb.js";
import type { Calls } from "../api/call.js";
import { CACHE_HEADER, type RpcContext } from "../api/context.js";
import type { ProfileApi } from "../api/service.js";
import { Code, RpcError } from "../api/status.js";
import { rpcContextKey } from "./connect-context.js";
import { fromConnectError, toConnectError } from "./connect-errors.js";
import { undecodableProblem } from "./request-decoding.js";

export function connectProfileService(api: ProfileApi, calls: Calls): ServiceImpl<typeof ProfileService> {
  const unary =
    <I, O>(handler: (req: I, ctx: RpcContext) => Promise<O>) =>
    async (req: I, hctx: HandlerContext): Promise<O> => {
      try {
        const ctx = contextOf(hctx);
        const res = await calls.unary(handler, ctx, decoded(req, hctx));
        if (ctx.cacheStatus === "stale") hctx.responseHeader.set(CACHE_HEADER, "stale");
        return res;
      } catch (err) {
        throw toConnectError(err as RpcError);
      }
    };
  return {
    getProfile: unary(api.getProfile),
    batchGetProfiles: unary(api.batchGetProfiles),
    updateProfile: unary(api.updateProfile),
    deleteProfile: unary(api.deleteProfile),
    getPreferences: unary(api.getPreferences),
    updatePreferences: unary(api.updatePreferences),
    async *watchProfileEvents(req, hctx) {
      try {
        yield* calls.stream(api.watchProfileEvents, contextOf(hctx), decoded(req, hctx));
      } catch (err) {
        throw toConnectError(err as RpcError);
      }
    },
  };
}

function contextOf(hctx: HandlerContext): RpcContext {
  const ctx = hctx.values.get(rpcContextKey);
  // The observer interceptor gives every ProfileService call one; without it this is a wiring bug.
  if (ctx === undefined) throw toConnectError(new RpcError("internal error", Code.Internal));
  return ctx;
}

function decoded<I>(req: I, hctx: HandlerContext): () => I {
  return () => {
    const problem = undecodableProblem(hctx.values);
    if (problem !== undefined) throw fromConnectError(problem);
    return req;
  };
}
