// What `npm start` prints when parts run embedded: a token for a demo user,
// a buf curl line that works as printed, and a warning that this is
// single-instance development mode.

import { SignJWT } from "jose";
import type { App } from "../app.js";

/** A fixed demo user, created on first start of an embedded database. */
export const DEMO_USER_ID = "123e4567-e89b-12d3-a456-426614174000";

export async function ensureDemoProfile(app: App): Promise<void> {
  const existing = await app.stores.db.query("SELECT 1 FROM profiles WHERE user_id = $1", [DEMO_USER_ID]);
  if (existing.rowCount > 0) return;
  await app.profiles.updateProfile(DEMO_USER_ID, {
    firstName: "John",
    lastName: "Doe",
    bio: "Software Engineer",
    avatarUrl: "https://example.com/avatar.jpg",
    phone: "+81-90-1234-5678",
  });
}

export async function devBanner(app: App, port: number): Promise<string> {
  const { database, cache, devSecret } = app.embedded;
  const lines = [
    "",
    "==================================================================================",
    "  DEVELOPMENT MODE: single instance only. Do not run replicas or production here.",
  ];
  if (database) lines.push(`  - database: embedded PGlite under ${app.config.dataDir}/pglite (set DATABASE_URL for PostgreSQL)`);
  if (cache) lines.push("  - cache and events: in this process (set REDIS_URL for Redis)");
  if (devSecret !== undefined) {
    lines.push(`  - tokens: signed with a generated secret in ${app.config.dataDir}/dev-jwt-secret (set JWT_SECRET or JWT_JWKS_URL)`);
    const token = await new SignJWT({ scope: "profiles:read profiles:write profiles:watch" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(DEMO_USER_ID)
      .setIssuedAt()
      .setExpirationTime("24h")
      .sign(new TextEncoder().encode(devSecret));
    lines.push(
      "",
      `  Token for the demo user ${DEMO_USER_ID} (24 h):`,
      `  ${token}`,
      "",
      "  Try it:",
      `  npx buf curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer ${token}" http://127.0.0.1:${port}/profile.v1.ProfileService/GetProfile`,
    );
  }
  lines.push("==================================================================================", "");
  return lines.join("\n");
}
