// The verified-token cache: hits skip verification, and an entry is never used
// at or past the token's exp, past its maximum age, or after a rejection.

import { describe, expect, it } from "vitest";
import type { Caller } from "../src/auth/caller.js";
import { mintToken } from "../src/auth/mint-token.js";
import { CachingTokenVerifier, type ExpiringTokenVerifier } from "../src/auth/token-cache.js";
import { JoseTokenVerifier, TokenRejectedError, type VerifiedToken } from "../src/auth/token-verifier.js";

const T0 = Date.UTC(2030, 0, 1);

/** A verifier whose answers the test sets per token, and which counts its calls. */
class ScriptedVerifier implements ExpiringTokenVerifier {
  calls = 0;
  readonly answers = new Map<string, VerifiedToken | Error>();

  async verifyToken(token: string): Promise<VerifiedToken> {
    this.calls++;
    const answer = this.answers.get(token);
    if (answer === undefined || answer instanceof Error) throw answer ?? new TokenRejectedError("unknown token");
    return answer;
  }
}

function caller(subject: string): Caller {
  return { subject, scopes: new Set() };
}

function setup(options: { maxEntries?: number; maxAgeMs?: number } = {}) {
  const clock = { now: T0 };
  const inner = new ScriptedVerifier();
  const cache = new CachingTokenVerifier(inner, {
    maxEntries: options.maxEntries ?? 100,
    maxAgeMs: options.maxAgeMs ?? 60 * 60_000,
    now: () => clock.now,
  });
  return { clock, inner, cache };
}

describe("the verified-token cache", () => {
  it("verifies a token once and answers repeats from the cache", async () => {
    const { inner, cache } = setup();
    inner.answers.set("a", { caller: caller("alice"), expiresAt: T0 / 1000 + 3600 });
    expect((await cache.verify("a")).subject).toBe("alice");
    expect((await cache.verify("a")).subject).toBe("alice");
    expect(inner.calls).toBe(1);
  });

  it("never serves a token from the cache at or past its exp", async () => {
    const { clock, inner, cache } = setup();
    inner.answers.set("a", { caller: caller("alice"), expiresAt: T0 / 1000 + 10 });
    await cache.verify("a");
    clock.now = T0 + 9_999;
    await cache.verify("a");
    expect(inner.calls).toBe(1);

    clock.now = T0 + 10_000;
    inner.answers.set("a", new TokenRejectedError("token has expired"));
    await expect(cache.verify("a")).rejects.toBeInstanceOf(TokenRejectedError);
    expect(inner.calls).toBe(2);
  });

  it("does not cache a token accepted only by the clock tolerance (already past exp)", async () => {
    const { inner, cache } = setup();
    inner.answers.set("late", { caller: caller("alice"), expiresAt: T0 / 1000 - 5 });
    await cache.verify("late");
    await cache.verify("late");
    expect(inner.calls).toBe(2);
  });

  it("re-verifies after the maximum age even when exp is far away", async () => {
    const { clock, inner, cache } = setup({ maxAgeMs: 1_000 });
    inner.answers.set("a", { caller: caller("alice"), expiresAt: T0 / 1000 + 3600 });
    await cache.verify("a");
    clock.now = T0 + 1_000;
    await cache.verify("a");
    expect(inner.calls).toBe(2);
  });

  it("never caches a rejection", async () => {
    const { inner, cache } = setup();
    inner.answers.set("bad", new TokenRejectedError("token signature is invalid"));
    await expect(cache.verify("bad")).rejects.toBeInstanceOf(TokenRejectedError);
    await expect(cache.verify("bad")).rejects.toBeInstanceOf(TokenRejectedError);
    expect(inner.calls).toBe(2);
  });

  it("keeps tokens apart and evicts the least recently used beyond its bound", async () => {
    const { inner, cache } = setup({ maxEntries: 2 });
    for (const t of ["a", "b", "c"]) inner.answers.set(t, { caller: caller(t), expiresAt: T0 / 1000 + 3600 });
    expect((await cache.verify("a")).subject).toBe("a");
    expect((await cache.verify("b")).subject).toBe("b");
    expect((await cache.verify("a")).subject).toBe("a"); // a is now the most recent
    expect((await cache.verify("c")).subject).toBe("c"); // evicts b
    expect(inner.calls).toBe(3);
    await cache.verify("a");
    expect(inner.calls).toBe(3);
    await cache.verify("b");
    expect(inner.calls).toBe(4);
  });

  it("wraps the real jose verifier: exp comes from the token", async () => {
    const secret = "token-cache-test-secret-at-least-32-bytes";
    const exp = Math.floor(Date.now() / 1000) + 120;
    const token = await mintToken({ secret, subject: "bob", scopes: ["profiles:read"], expiresAt: exp });
    const jose = new JoseTokenVerifier({
      secret,
      jwksUrl: undefined,
      issuer: undefined,
      audience: undefined,
      clockToleranceSeconds: 30,
    });
    expect((await jose.verifyToken(token)).expiresAt).toBe(exp);
    let calls = 0;
    const cache = new CachingTokenVerifier({
      verifyToken: (t) => {
        calls++;
        return jose.verifyToken(t);
      },
    });
    const first = await cache.verify(token);
    const second = await cache.verify(token);
    expect(second).toBe(first);
    expect([...first.scopes]).toEqual(["profiles:read"]);
    expect(calls).toBe(1);
    await expect(cache.verify(`${token}x`)).rejects.toBeInstanceOf(TokenRejectedError);
  });
});
