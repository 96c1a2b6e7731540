// Tokens for tests, signed with the test secret by the service's own minting
// function (src/auth/mint-token.ts), so tests and `npm run token` agree.

import type { JWTPayload } from "jose";
import { mintToken as mint } from "../../src/auth/mint-token.js";

export const TEST_JWT_SECRET = "test-secret-that-is-at-least-32-bytes-long";

export interface TokenOptions {
  /** The `scope` claim as sent (space-separated); none when empty. */
  scope?: string;
  /** A jose duration ("1h", the default), or `exp` in epoch seconds. */
  expiresIn?: string | number;
  notBefore?: string | number;
  audience?: string;
  issuer?: string;
  secret?: string;
  claims?: JWTPayload;
}

export function mintToken(sub: string | undefined, options: TokenOptions = {}): Promise<string> {
  const { scope, expiresIn } = options;
  return mint({
    secret: options.secret ?? TEST_JWT_SECRET,
    subject: sub,
    scopes: scope ? [scope] : [],
    ...(typeof expiresIn === "number" ? { expiresAt: expiresIn } : { ttl: expiresIn }),
    notBefore: options.notBefore,
    audience: options.audience,
    issuer: options.issuer,
    claims: options.claims,
  });
}

/** An unsigned token (`alg: none`) with the given claims. */
export function unsignedToken(payload: JWTPayload): string {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${b64({ alg: "none", typ: "JWT" })}.${b64(payload)}.`;
}
