// Verified tokens, remembered so that a caller's repeated calls skip the
// signature check. Profiling the hit path showed JWT verification (jose over
// WebCrypto: a key import and an HMAC job per call) as the largest cost the
// service itself adds on top of the RPC stack.
//
// - Keyed by a SHA-256 of the token: the cache never holds bearer tokens.
// - An entry is never used at or past the token's `exp`, and never longer
//   than `maxAgeMs` after it was verified, which bounds how long a token
//   signed by a key since removed from the JWKS keeps working.
// - Only successes are cached; a rejected token is checked again every time.
// - Bounded by `maxEntries`, least recently used first out.

import { hash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Caller } from "./caller.js";
import type { TokenVerifier, VerifiedToken } from "./token-verifier.js";

export interface ExpiringTokenVerifier {
  verifyToken(token: string): Promise<VerifiedToken>;
}

export interface TokenCacheOptions {
  maxEntries: number;
  maxAgeMs: number;
  /** Milliseconds since the epoch; a seam for tests. */
  now?: () => number;
}

export const DEFAULT_TOKEN_CACHE: TokenCacheOptions = { maxEntries: 10_000, maxAgeMs: 5 * 60_000 };

interface Entry {
  caller: Caller;
  validUntilMs: number;
}

export class CachingTokenVerifier implements TokenVerifier {
  private readonly entries: LRUCache<string, Entry>;
  private readonly now: () => number;

  constructor(
    private readonly inner: ExpiringTokenVerifier,
    private readonly options: TokenCacheOptions = DEFAULT_TOKEN_CACHE,
  ) {
    this.entries = new LRUCache<string, Entry>({ max: options.maxEntries });
    this.now = options.now ?? Date.now;
  }

  async verify(token: string): Promise<Caller> {
    const key = hash("sha256", token, "base64");
    const cached = this.entries.get(key);
    if (cached !== undefined) {
      if (this.now() < cached.validUntilMs) return cached.caller;
      this.entries.delete(key);
    }
    const { caller, expiresAt } = await this.inner.verifyToken(token);
    const verifiedAt = this.now();
    const validUntilMs = Math.min(expiresAt * 1000, verifiedAt + this.options.maxAgeMs);
    // A token inside the clock tolerance past its exp is accepted, but never from the cache.
    if (validUntilMs > verifiedAt) this.entries.set(key, { caller, validUntilMs });
    return caller;
  }
}
