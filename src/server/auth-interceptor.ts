import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { TokenVerifier } from "../auth/token-verifier.js";
import { callerKey } from "./context.js";

const BEARER = /^Bearer +([A-Za-z0-9\-_.]+)\s*$/i;

/** Requires a valid bearer token on the given services; others (health, reflection) pass. */
export function authInterceptor(verifier: TokenVerifier, protectedServices: ReadonlySet<string>): Interceptor {
  return (next) => async (req) => {
    if (!protectedServices.has(req.service.typeName)) return next(req);
    const header = req.header.get("authorization");
    if (header === null) {
      throw new ConnectError('missing "authorization: Bearer <token>" header', Code.Unauthenticated);
    }
    const match = BEARER.exec(header);
    if (match === null) {
      throw new ConnectError('the authorization header must be "Bearer <token>"', Code.Unauthenticated);
    }
    req.contextValues.set(callerKey, await verifier.verify(match[1]!));
    return next(req);
  };
}
