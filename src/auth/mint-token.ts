// HS256 tokens shaped like the ones our callers send (sub, scope, iat, exp).
// The one place that signs them, for `npm run token`, the development banner,
// the tests and the bench; the service itself only verifies.

import { SignJWT, type JWTPayload } from "jose";

export interface MintTokenOptions {
  /** The HS256 secret the service is given (JWT_SECRET). */
  secret: string;
  subject?: string;
  /** Joined into the space-separated `scope` claim; no claim when empty. */
  scopes?: readonly string[];
  /** A jose duration such as "1h" (the default) or "2h". */
  ttl?: string;
  /** `exp` in epoch seconds, instead of `ttl` (for tokens that are already expired). */
  expiresAt?: number;
  /** `nbf`: a jose duration or epoch seconds. */
  notBefore?: string | number;
  issuer?: string;
  audience?: string;
  /** Further claims, merged over `scope`. */
  claims?: JWTPayload;
}

export function mintToken(o: MintTokenOptions): Promise<string> {
  const scope = o.scopes?.join(" ") ?? "";
  let jwt = new SignJWT({ ...(scope === "" ? {} : { scope }), ...o.claims })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(o.expiresAt ?? o.ttl ?? "1h");
  if (o.subject !== undefined) jwt = jwt.setSubject(o.subject);
  if (o.notBefore !== undefined) jwt = jwt.setNotBefore(o.notBefore);
  if (o.issuer !== undefined) jwt = jwt.setIssuer(o.issuer);
  if (o.audience !== undefined) jwt = jwt.setAudience(o.audience);
  return jwt.sign(new TextEncoder().encode(o.secret));
}
