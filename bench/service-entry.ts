// The process the bench runs as "the service": src/main.ts's composition
// (createApp + listen on the app's handler), plus one route src/ does not have
// yet, grpc.health.v1.Health/Check, behind the same RPC observer and auth
// interceptor, so F-rpc is the cheapest successful call through the same stack.
//
// When the service ships its own Health service, point service.ts at
// src/main.ts instead: RPC_FLOOR keeps working unchanged.

import { create, type DescMessage, type DescMethodUnary } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { createApp } from "../src/app.js";
import { JoseTokenVerifier } from "../src/auth/token-verifier.js";
import { loadConfig } from "../src/config/config.js";
import { createLogger, errorSummary } from "../src/log/logger.js";
import { authInterceptor } from "../src/server/auth-interceptor.js";
import { listen } from "../src/server/http2-server.js";
import { rpcObserver } from "../src/server/rpc-observer.js";
import { Health, HealthCheckResponseSchema, SERVING } from "./health.js";

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const app = await createApp({ config, log });
  const check = Health.methods[0] as DescMethodUnary<DescMessage, DescMessage>;
  const floor = connectNodeAdapter({
    routes: (router) => {
      router.rpc(check, () => create(HealthCheckResponseSchema, { status: SERVING }));
    },
    interceptors: [
      rpcObserver(app.metrics, log),
      authInterceptor(new JoseTokenVerifier(config.jwt), new Set([ProfileService.typeName])),
    ],
    readMaxBytes: config.readMaxBytes,
  });
  const floorPath = `/${Health.typeName}/${check.name}`;
  const server = await listen(
    (req, res) => (req.url === floorPath ? floor(req, res) : app.handler(req, res)),
    config.port,
    config.host,
  );
  log.info({ port: server.port }, "profile-service listening");

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    await app.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

main().catch((err: unknown) => {
  process.stderr.write(`bench service: failed to start: ${errorSummary(err)}\n`);
  process.exit(1);
});
