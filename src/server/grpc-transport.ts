// The gRPC transport: a grpc-js server with ProfileService (through the API
// layer), health and reflection. grpc-listener.ts puts it on a port.

import type { DescFile } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { ProfileService } from "../../gen/profile/v1/profile_pb.js";
import type { Calls } from "../api/call.js";
import type { RpcObserver } from "../api/observe.js";
import type { ProfileApi } from "../api/service.js";
import type { Config, ServerLimits } from "../config/config.js";
import type { Logger } from "../log/logger.js";
import { apiServices } from "./connect-transport.js";
import { serviceDefinition } from "./grpc-codec.js";
import { GrpcCalls } from "./grpc-calls.js";
import { grpcServerOptions } from "./grpc-listener.js";
import { grpcProfileService } from "./grpc-service.js";
import { addHealth, addReflection } from "./grpc-standard.js";
import type { HealthStatus } from "./health.js";

export interface GrpcTransportOptions {
  api: ProfileApi;
  calls: Calls;
  observer: RpcObserver;
  health: HealthStatus;
  /** Files reflection describes beyond the services' own (error details). */
  extraFiles: readonly DescFile[];
  limits: ServerLimits;
  connectionAge: Config["connectionAge"];
  readMaxBytes: number;
  log: Logger;
}

export interface GrpcTransport {
  readonly server: grpc.Server;
  readonly calls: GrpcCalls;
}

export function grpcTransport(options: GrpcTransportOptions): GrpcTransport {
  const server = new grpc.Server(grpcServerOptions(options.limits, options.readMaxBytes, options.connectionAge));
  const calls = new GrpcCalls(options.observer, apiServices, [
    ProfileService,
    Health,
    ServerReflection,
    ServerReflectionV1alpha,
  ]);
  server.addService(
    serviceDefinition(ProfileService),
    grpcProfileService(options.api, options.calls, calls, options.log),
  );
  addHealth(server, options.health);
  addReflection(server, [
    ProfileService.file,
    Health.file,
    ServerReflection.file,
    ServerReflectionV1alpha.file,
    ...options.extraFiles,
  ]);
  return { server, calls };
}
