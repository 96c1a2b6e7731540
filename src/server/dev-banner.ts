// What `npm start` prints when parts run embedded: a token for the demo user
// (profiles/demo-profile.ts), a buf curl and a plain curl line that work as
// printed, and a warning that this is single-instance development mode.

import type { App } from "../app.js";
import { Scope } from "../auth/caller.js";
import { mintToken } from "../auth/mint-token.js";
import { DEMO_USER_ID } from "../profiles/demo-profile.js";

export async function devBanner(app: App, port: number, httpPort: number): Promise<string> {
  const { database, cache, devSecret } = app.embedded;
  const lines = [
    "",
    "==================================================================================",
    "  DEVELOPMENT MODE: single instance only. Do not run replicas or production here.",
  ];
  if (database)
    lines.push(`  - database: embedded PGlite under ${app.config.dataDir}/pglite (set DATABASE_URL for PostgreSQL)`);
  if (cache) lines.push("  - cache and events: in this process (set REDIS_URL for Redis)");
  if (devSecret !== undefined) {
    lines.push(
      `  - tokens: signed with a generated secret in ${app.config.dataDir}/dev-jwt-secret (set JWT_SECRET or JWT_JWKS_URL)`,
    );
    const token = await mintToken({
      secret: devSecret,
      subject: DEMO_USER_ID,
      scopes: [Scope.read, Scope.write, Scope.watch],
      ttl: "24h",
    });
    lines.push(
      "",
      `  Token for the demo user ${DEMO_USER_ID} (24 h):`,
      `  ${token}`,
      "",
      "  Try it:",
      `  npx buf curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer ${token}" http://127.0.0.1:${port}/profile.v1.ProfileService/GetProfile`,
      "",
      "  Or with plain curl (the Connect protocol):",
      `  curl -H "authorization: Bearer ${token}" -H "content-type: application/json" -d '{}' http://127.0.0.1:${httpPort}/profile.v1.ProfileService/GetProfile`,
    );
  }
  lines.push("==================================================================================", "");
  return lines.join("\n");
}
