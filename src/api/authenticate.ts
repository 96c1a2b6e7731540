// Every ProfileService call carries one bearer token; the verified caller is
// what the access rules see.

import type { Caller } from "../auth/caller.js";
import type { TokenVerifier } from "../auth/token-verifier.js";
import { Code, RpcError } from "./status.js";

const BEARER = /^Bearer +([A-Za-z0-9\-_.]+)\s*$/i;

/** The caller the request's `authorization` header lines name, or UNAUTHENTICATED. */
export async function authenticate(verifier: TokenVerifier, authorization: readonly string[]): Promise<Caller> {
  if (authorization.length === 0) {
    throw new RpcError('missing "authorization: Bearer <token>" header', Code.Unauthenticated);
  }
  // A proxy may join repeated lines with ", "; a token never contains a comma.
  if (authorization.length > 1 || authorization[0]!.includes(",")) {
    throw new RpcError("send exactly one authorization header, with exactly one bearer token", Code.Unauthenticated);
  }
  const match = BEARER.exec(authorization[0]!);
  if (match === null) {
    throw new RpcError('the authorization header must be "Bearer <token>"', Code.Unauthenticated);
  }
  return verifier.verify(match[1]!);
}
