// CORS for browser clients on other origins (Connect and gRPC-Web over TLS).
// Only origins in CORS_ALLOWED_ORIGINS get CORS headers; with the list empty
// (the default) nothing changes and browsers keep refusing cross-origin calls.
// The header lists are Connect-ES's own constants, so they follow the
// protocols, plus `authorization`, the one header of ours a browser sends.

import type * as http2 from "node:http2";
import { cors as connectCors } from "@connectrpc/connect";
import type { RequestHandler } from "./request-limits.js";

const allowMethods = connectCors.allowedMethods.join(", ");
const allowHeaders = [...connectCors.allowedHeaders, "Authorization"].join(", ");
const exposeHeaders = connectCors.exposedHeaders.join(", ");
/** How long a browser may cache a preflight answer (Chrome caps it at 2 hours). */
const MAX_AGE_SECONDS = "7200";

export function withCors(handler: RequestHandler, allowedOrigins: readonly string[]): RequestHandler {
  if (allowedOrigins.length === 0) return handler;
  const anyOrigin = allowedOrigins[0] === "*";
  const allowed = new Set(allowedOrigins);
  return (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const origin = req.headers.origin;
    if (typeof origin !== "string") {
      handler(req, res);
      return;
    }
    const permitted = anyOrigin || allowed.has(origin);
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (preflight) {
      const vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
      if (!permitted) {
        res.writeHead(403, { vary });
        res.end();
        return;
      }
      res.writeHead(204, {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": allowMethods,
        "access-control-allow-headers": allowHeaders,
        "access-control-max-age": MAX_AGE_SECONDS,
        vary,
      });
      res.end();
      return;
    }
    // The answer depends on Origin, so caches must keep answers apart by it.
    res.setHeader("vary", "Origin");
    if (permitted) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", exposeHeaders);
    }
    handler(req, res);
  };
}
