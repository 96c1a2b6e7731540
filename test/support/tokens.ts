import { SignJWT, type JWTPayload } from "jose";

export const TEST_JWT_SECRET = "test-secret-that-is-at-least-32-bytes-long";
const key = new TextEncoder().encode(TEST_JWT_SECRET);

export interface TokenOptions {
  scope?: string;
  expiresIn?: string | number;
  notBefore?: string | number;
  audience?: string;
  issuer?: string;
  secret?: string;
  claims?: JWTPayload;
}

export async function mintToken(sub: string | undefined, options: TokenOptions = {}): Promise<string> {
  let jwt = new SignJWT({ ...(options.scope ? { scope: options.scope } : {}), ...options.claims })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "1h");
  if (sub !== undefined) jwt = jwt.setSubject(sub);
  if (options.notBefore !== undefined) jwt = jwt.setNotBefore(options.notBefore);
  if (options.audience !== undefined) jwt = jwt.setAudience(options.audience);
  if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer);
  return jwt.sign(options.secret === undefined ? key : new TextEncoder().encode(options.secret));
}

/** An unsigned token (`alg: none`) with the given claims. */
export function unsignedToken(payload: JWTPayload): string {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${b64({ alg: "none", typ: "JWT" })}.${b64(payload)}.`;
}
