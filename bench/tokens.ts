// HS256 tokens signed with the secret the service under test is given, shaped
// like the tokens our callers send (sub, scope, exp).

import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";

export function newJwtSecret(): string {
  return randomBytes(32).toString("base64url");
}

export function mintToken(secret: string, sub: string, scope = ""): Promise<string> {
  return new SignJWT(scope === "" ? {} : { scope })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(new TextEncoder().encode(secret));
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
