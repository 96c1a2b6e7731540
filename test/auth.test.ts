// JWT verification and the rules for whose data a caller may touch.

import { once } from "node:events";
import { Code } from "@connectrpc/connect";
import { createServer, type Server } from "node:http";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpc } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { codeOf } from "./support/status.js";
import { mintToken, TEST_JWT_SECRET, unsignedToken } from "./support/tokens.js";

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({
    label: "auth",
    env: { JWT_AUDIENCE: "profile-service", JWT_ISSUER: "https://auth.internal" },
  });
});
afterAll(async () => {
  await svc?.close();
});

const claims = { audience: "profile-service", issuer: "https://auth.internal" };

describe("token verification (HS256)", () => {
  it("accepts a valid token", async () => {
    const me = randomUserId();
    expect(
      await codeOf(svc.grpc.unary("updateProfile", { profile: { firstName: "ok" } }, await mintToken(me, claims))),
    ).toBe(grpc.status.OK);
  });

  it("rejects a missing, malformed or non-bearer authorization header", async () => {
    expect(await codeOf(svc.grpc.unary("getProfile", {}))).toBe(grpc.status.UNAUTHENTICATED);
    const basic = svc.connect.getProfile({}, { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    await expect(basic).rejects.toMatchObject({ code: Code.Unauthenticated });
    const garbage = svc.connect.getProfile({}, { headers: { authorization: "Bearer not.a.jwt" } });
    await expect(garbage).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("never accepts alg: none", async () => {
    const token = unsignedToken({
      sub: randomUserId(),
      exp: Math.floor(Date.now() / 1000) + 3600,
      aud: "profile-service",
      iss: "https://auth.internal",
      scope: "profiles:read profiles:write",
    });
    expect(await codeOf(svc.grpc.unary("getProfile", {}, token))).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("rejects an expired token, but tolerates small clock skew", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await mintToken(randomUserId(), { ...claims, expiresIn: now - 120 });
    expect(await codeOf(svc.grpc.unary("getProfile", {}, expired))).toBe(grpc.status.UNAUTHENTICATED);
    const justExpired = await mintToken(randomUserId(), { ...claims, expiresIn: now - 5 });
    expect(await codeOf(svc.grpc.unary("getProfile", {}, justExpired))).toBe(grpc.status.NOT_FOUND);
  });

  it("rejects a token that is not yet valid", async () => {
    const future = await mintToken(randomUserId(), { ...claims, notBefore: Math.floor(Date.now() / 1000) + 600 });
    expect(await codeOf(svc.grpc.unary("getProfile", {}, future))).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("rejects the wrong audience, the wrong issuer, a missing exp, and the wrong key", async () => {
    const sub = randomUserId();
    const cases = [
      await mintToken(sub, { ...claims, audience: "billing-service" }),
      await mintToken(sub, { audience: "profile-service" }),
      await mintToken(sub, { ...claims, issuer: "https://evil.example" }),
      await mintToken(sub, { ...claims, secret: "another-secret-that-is-32-bytes-long!!" }),
      // No exp: the one shape mintToken cannot make.
      await new SignJWT({})
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(sub)
        .setAudience("profile-service")
        .setIssuer("https://auth.internal")
        .sign(new TextEncoder().encode(TEST_JWT_SECRET)),
      await mintToken(undefined, claims),
    ];
    for (const token of cases)
      expect(await codeOf(svc.grpc.unary("getProfile", {}, token))).toBe(grpc.status.UNAUTHENTICATED);
  });
});

describe("whose data", () => {
  it("lets a user act on their own data only", async () => {
    const alice = randomUserId();
    const bob = randomUserId();
    const aliceToken = await mintToken(alice, claims);
    const bobToken = await mintToken(bob, claims);
    await svc.grpc.unary("updateProfile", { profile: { firstName: "Bob" } }, bobToken);
    await svc.grpc.unary(
      "updatePreferences",
      { preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } },
      bobToken,
    );

    // The user id in the body never overrides the token.
    expect(await codeOf(svc.grpc.unary("getProfile", { userId: bob }, aliceToken))).toBe(grpc.status.PERMISSION_DENIED);
    expect(await codeOf(svc.grpc.unary("getPreferences", { userId: bob }, aliceToken))).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    expect(
      await codeOf(svc.grpc.unary("updateProfile", { userId: bob, profile: { firstName: "pwned" } }, aliceToken)),
    ).toBe(grpc.status.PERMISSION_DENIED);
    expect(
      await codeOf(
        svc.grpc.unary(
          "updatePreferences",
          { userId: bob, preferences: { theme: "light" }, updateMask: { paths: ["theme"] } },
          aliceToken,
        ),
      ),
    ).toBe(grpc.status.PERMISSION_DENIED);
    expect(await codeOf(svc.grpc.unary("deleteProfile", { userId: bob }, aliceToken))).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    expect((await svc.grpc.unary("getProfile", { userId: bob }, bobToken)).profile?.firstName).toBe("Bob");
  });

  it("profiles:read reads anyone's data but writes nothing; profiles:write writes anyone's", async () => {
    const bob = randomUserId();
    await svc.grpc.unary("updateProfile", { profile: { firstName: "Bob" } }, await mintToken(bob, claims));
    const reader = await mintToken("search-indexer", { ...claims, scope: "profiles:read" });
    const writer = await mintToken("admin-tool", { ...claims, scope: "profiles:write" });

    expect((await svc.grpc.unary("getProfile", { userId: bob }, reader)).profile?.firstName).toBe("Bob");
    expect(await codeOf(svc.grpc.unary("updateProfile", { userId: bob, profile: { firstName: "x" } }, reader))).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    expect(await codeOf(svc.grpc.unary("getProfile", { userId: bob }, writer))).toBe(grpc.status.PERMISSION_DENIED);
    const written = await svc.grpc.unary(
      "updateProfile",
      { userId: bob, profile: { firstName: "Robert" }, updateMask: { paths: ["first_name"] } },
      writer,
    );
    expect(written.profile?.firstName).toBe("Robert");
    expect(await codeOf(svc.grpc.unary("deleteProfile", { userId: bob }, writer))).toBe(grpc.status.OK);
  });
});

describe("token verification (JWKS)", () => {
  let jwksServer: Server;
  let jwksUrl: string;
  let jwks: TestService;
  const keys: Record<string, { privateKey: CryptoKey; publicKey: CryptoKey; kid: string }> = {};
  let jwksFetches = 0;

  beforeAll(async () => {
    const published: JWK[] = [];
    for (const alg of ["RS256", "ES256", "EdDSA"]) {
      const pair = await generateKeyPair(alg, { extractable: true });
      keys[alg] = { ...pair, kid: `key-${alg}` };
      published.push({ ...(await exportJWK(pair.publicKey)), kid: `key-${alg}`, alg, use: "sig" });
    }
    jwksServer = createServer((_, res) => {
      jwksFetches++;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys: published }));
    });
    jwksServer.listen(0, "127.0.0.1");
    await once(jwksServer, "listening");
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/.well-known/jwks.json`;
    jwks = await startTestService({ label: "auth_jwks", env: { JWT_SECRET: "", JWT_JWKS_URL: jwksUrl } });
  });
  afterAll(async () => {
    await jwks?.close();
    jwksServer?.close();
  });

  async function sign(alg: string, sub: string): Promise<string> {
    const { privateKey, kid } = keys[alg]!;
    return new SignJWT({}).setProtectedHeader({ alg, kid }).setSubject(sub).setExpirationTime("5m").sign(privateKey);
  }

  it.each(["RS256", "ES256", "EdDSA"])("accepts %s tokens signed by a published key", async (alg) => {
    const me = randomUserId();
    const res = await jwks.grpc.unary("updateProfile", { profile: { firstName: alg } }, await sign(alg, me));
    expect(res.profile?.userId).toBe(me);
  });

  it("caches the key set instead of fetching it per call", async () => {
    const token = await sign("ES256", randomUserId());
    await jwks.grpc.unary("getProfile", {}, token).catch(() => {});
    const before = jwksFetches;
    await Promise.all(Array.from({ length: 10 }, () => jwks.grpc.unary("getProfile", {}, token).catch(() => {})));
    expect(before).toBeGreaterThan(0);
    expect(jwksFetches).toBe(before);
  });

  it("never checks an HMAC token against a public key", async () => {
    // The classic confusion attack: HS256 keyed with the public key's bytes.
    const pem = await exportSPKI(keys.RS256!.publicKey);
    const forged = await new SignJWT({ scope: "profiles:write" })
      .setProtectedHeader({ alg: "HS256", kid: keys.RS256!.kid })
      .setSubject(randomUserId())
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(pem));
    expect(await codeOf(jwks.grpc.unary("getProfile", {}, forged))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await codeOf(jwks.grpc.unary("getProfile", {}, await mintToken(randomUserId())))).toBe(
      grpc.status.UNAUTHENTICATED,
    );
  });

  it("answers UNAVAILABLE, not UNAUTHENTICATED, when the key set cannot be fetched", async () => {
    const unreachable = await startTestService({
      label: "auth_jwks_down",
      env: { JWT_SECRET: "", JWT_JWKS_URL: "http://127.0.0.1:9/jwks.json" },
    });
    try {
      expect(await codeOf(unreachable.grpc.unary("getProfile", {}, await sign("ES256", randomUserId())))).toBe(
        grpc.status.UNAVAILABLE,
      );
    } finally {
      await unreachable.close();
    }
  });
});
