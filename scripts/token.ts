// npm run token -- --sub <uuid> [--scope "profiles:read profiles:watch"] [--ttl 1h]
// Mints an HS256 token with JWT_SECRET (or the embedded development secret).

import { parseArgs } from "node:util";
import { SignJWT } from "jose";
import { loadConfig } from "../src/config/config.js";
import { resolveDevSecret } from "../src/auth/dev-secret.js";

const { values } = parseArgs({
  options: {
    sub: { type: "string" },
    scope: { type: "string", default: "" },
    ttl: { type: "string", default: "1h" },
  },
});

if (values.sub === undefined || values.sub === "") {
  process.stderr.write('usage: npm run token -- --sub <uuid> [--scope "profiles:read profiles:watch"] [--ttl 1h]\n');
  process.exit(2);
}
const config = loadConfig();
if (config.jwt.jwksUrl !== undefined) {
  process.stderr.write("JWT_JWKS_URL is set: tokens come from your identity provider, not from this command\n");
  process.exit(2);
}
const secret = config.jwt.secret ?? resolveDevSecret(config.dataDir).secret;
let jwt = new SignJWT(values.scope ? { scope: values.scope } : {})
  .setProtectedHeader({ alg: "HS256", typ: "JWT" })
  .setSubject(values.sub)
  .setIssuedAt()
  .setExpirationTime(values.ttl);
if (config.jwt.issuer !== undefined) jwt = jwt.setIssuer(config.jwt.issuer);
if (config.jwt.audience !== undefined) jwt = jwt.setAudience(config.jwt.audience);
process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret))}\n`);
