// JWT verification with jose. Algorithms are pinned per key type, so an HMAC
// token is never checked against a public key and `alg: none` never verifies.

import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import type { JwtConfig } from "../config/config.js";
import type { Caller } from "./caller.js";

export interface TokenVerifier {
  /** Resolves to the caller, or rejects with TokenRejectedError / KeySourceUnavailableError. */
  verify(token: string): Promise<Caller>;
}

/** A verified token: its caller, and until when the token itself says it is valid. */
export interface VerifiedToken {
  caller: Caller;
  /** The `exp` claim, in seconds since the epoch (required on every token we accept). */
  expiresAt: number;
}

/** The token is missing, malformed, badly signed, expired or for someone else. */
export class TokenRejectedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "TokenRejectedError";
  }
}

/** The JWKS could not be fetched, so no token can be checked right now. */
export class KeySourceUnavailableError extends Error {
  constructor(cause: unknown) {
    super("signing keys are unavailable", { cause });
    this.name = "KeySourceUnavailableError";
  }
}

const HMAC_ALGORITHMS = ["HS256"];
const PUBLIC_KEY_ALGORITHMS = ["RS256", "ES256", "EdDSA"];

export class JoseTokenVerifier implements TokenVerifier {
  private readonly key: Uint8Array | JWTVerifyGetKey;
  private readonly algorithms: string[];

  constructor(private readonly config: JwtConfig) {
    if (config.secret !== undefined) {
      this.key = new TextEncoder().encode(config.secret);
      this.algorithms = HMAC_ALGORITHMS;
    } else if (config.jwksUrl !== undefined) {
      this.key = createRemoteJWKSet(new URL(config.jwksUrl), {
        cacheMaxAge: 10 * 60_000,
        cooldownDuration: 30_000,
        timeoutDuration: 5_000,
      });
      this.algorithms = PUBLIC_KEY_ALGORITHMS;
    } else {
      throw new Error("JwtConfig needs a secret or a JWKS URL");
    }
  }

  async verify(token: string): Promise<Caller> {
    return (await this.verifyToken(token)).caller;
  }

  async verifyToken(token: string): Promise<VerifiedToken> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key as Uint8Array, {
        algorithms: this.algorithms,
        issuer: this.config.issuer,
        audience: this.config.audience,
        clockTolerance: this.config.clockToleranceSeconds,
        requiredClaims: ["sub", "exp"],
      }));
    } catch (err) {
      throw classify(err);
    }
    if (typeof payload.sub !== "string" || payload.sub === "") throw new TokenRejectedError("token has no subject");
    const scope = typeof payload.scope === "string" ? payload.scope : "";
    return {
      caller: { subject: payload.sub, scopes: new Set(scope.split(" ").filter((s) => s !== "")) },
      // requiredClaims makes jose check that exp is present and a number.
      expiresAt: payload.exp!,
    };
  }
}

function classify(err: unknown): Error {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return new KeySourceUnavailableError(err);
  if (err instanceof errors.JWTExpired) return new TokenRejectedError("token has expired");
  if (err instanceof errors.JWTClaimValidationFailed)
    return new TokenRejectedError(`token claim "${err.claim}" is not accepted`);
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenRejectedError("token signing algorithm is not allowed");
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenRejectedError("token signature is invalid");
  if (err instanceof errors.JWKSNoMatchingKey) return new TokenRejectedError("token was signed by an unknown key");
  if (err instanceof errors.JOSEError) return new TokenRejectedError("token is malformed or not accepted");
  // A failed JWKS fetch surfaces as a plain network error.
  if (err instanceof TypeError || (err as { code?: string } | null)?.code?.startsWith?.("E")) {
    return new KeySourceUnavailableError(err);
  }
  return new TokenRejectedError("token is not accepted");
}
