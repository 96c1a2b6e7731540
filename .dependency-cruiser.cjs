// The architecture, as rules (npm run lint:deps; .ci/run runs it). Each
// folder imports only folders below it:
//
//   main.ts, app.ts    compose everything
//   server/            the transports: grpc-js (PORT), Connect-ES (HTTP_PORT), HTTP/2 hygiene
//   api/               the RPC surface in our own types: handlers, access, validation, errors
//   profiles/          the domain: Profiles, ProfileRepository, the near cache, warm-up
//   consistency/       the consistency checker (a background reader beside the domain)
//   events/            the outbox, the post-commit seam and its publisher, the relay, the watch hub
//   cache/             cache-aside, key names, suspect keys: the cache tier, entity-agnostic
//   store/ auth/       adapters: PostgreSQL, PGlite, Redis, in-process; JWT verification
//   metrics/ log/ config/ lib/ tracing/   leaves (tracing/: the OpenTelemetry seam every layer may call)
//
// Arrows point down only: the domain never knows the RPC surface, which
// never knows the transports; events/ is below profiles/ (profiles commit
// through its seams), and cache/ knows neither. no-folder-cycles keeps the
// ladder a ladder even where the rules below say nothing.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "No file may import itself through others.",
      from: {},
      to: { circular: true },
    },
    {
      name: "no-folder-cycles",
      severity: "error",
      comment: "No folder may import itself through other folders: the layers form a ladder, not a ring.",
      scope: "folder",
      from: {},
      to: { circular: true },
    },
    {
      name: "domain-knows-no-rpc",
      severity: "error",
      comment: "The domain and the cache never import the RPC surface or a transport.",
      from: { path: "^src/(profiles|consistency|events|cache)/" },
      to: { path: "^src/(api|server)/" },
    },
    {
      name: "api-knows-no-transport",
      severity: "error",
      comment: "api/ speaks our own types: no transport, and no RPC library.",
      from: { path: "^src/api/" },
      to: { path: ["^src/server/", "node_modules/@connectrpc/", "node_modules/@grpc/"] },
    },
    {
      name: "domain-knows-no-rpc-library",
      severity: "error",
      comment: "The domain and the cache throw their own errors, not Connect's or grpc-js'.",
      from: { path: "^src/(profiles|consistency|events|cache)/" },
      to: { path: ["node_modules/@connectrpc/", "node_modules/@grpc/"] },
    },
    {
      name: "events-below-profiles",
      severity: "error",
      comment: "events/ keeps the outbox and the bus for any entity; profiles/ commits through it, never the reverse.",
      from: { path: "^src/events/" },
      to: { path: "^src/(profiles|consistency)/" },
    },
    {
      name: "cache-knows-no-domain",
      severity: "error",
      comment: "cache/ is the cache tier alone: events/ and profiles/ use it, it uses neither.",
      from: { path: "^src/cache/" },
      to: { path: "^src/(profiles|consistency|events)/" },
    },
    {
      name: "only-the-composer-runs-the-checker",
      severity: "error",
      comment: "The consistency checker is started by app.ts; nothing else depends on it.",
      from: { path: "^src/", pathNot: ["^src/consistency/", "^src/app\\.ts$"] },
      to: { path: "^src/consistency/" },
    },
    {
      name: "adapters-stay-adapters",
      severity: "error",
      comment: "Adapters and leaves import no layer above them.",
      from: { path: "^src/(store|auth|metrics|log|config|lib|tracing)/" },
      to: { path: "^src/(api|server|profiles|consistency|events|cache)/" },
    },
    {
      name: "leaves-stay-leaves",
      severity: "error",
      comment:
        "metrics/, log/, config/ and lib/ import no adapter: the metrics own the CacheStats port the stores implement.",
      from: { path: "^src/(metrics|log|config|lib|tracing)/" },
      to: { path: "^src/(store|auth)/" },
    },
    {
      name: "tracing-is-a-leaf",
      severity: "error",
      comment:
        "tracing/ is called from every layer (spans, the outbox's trace context), so it imports only the other leaves.",
      from: { path: "^src/tracing/" },
      to: { path: "^src/", pathNot: "^src/(tracing|log|config|lib)/" },
    },
    {
      name: "lib-is-the-floor",
      severity: "error",
      comment: "lib/ holds helpers every layer may use, so it imports nothing of ours.",
      from: { path: "^src/lib/" },
      to: { path: "^src/", pathNot: "^src/lib/" },
    },
    {
      name: "only-the-entry-points-compose",
      severity: "error",
      comment: "Only main.ts and app.ts (and the transports' own files) import server/.",
      from: { path: "^src/", pathNot: ["^src/server/", "^src/main\\.ts$", "^src/app\\.ts$"] },
      to: { path: "^src/server/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^gen/" },
  },
};
