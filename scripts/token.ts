// npm run token -- --sub <uuid> [--scope "profiles:read profiles:watch"] [--ttl 1h]
// Mints an HS256 token with JWT_SECRET (or the embedded development secret).

import { parseArgs } from "node:util";
import { loadConfig } from "../src/config/config.js";
import { resolveDevSecret } from "../src/auth/dev-secret.js";
import { mintToken } from "../src/auth/mint-token.js";

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
const token = await mintToken({
  secret: config.jwt.secret ?? resolveDevSecret(config.dataDir),
  subject: values.sub,
  scopes: values.scope.split(" ").filter((s) => s !== ""),
  ttl: values.ttl,
  issuer: config.jwt.issuer,
  audience: config.jwt.audience,
});
process.stdout.write(`${token}\n`);
