// The services every gRPC server is expected to have, on the same port as
// the application's and outside its auth: health checking and reflection.

import type { DescFile, DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { healthService, type HealthStatus } from "./health.js";
import { reflectionFor } from "./reflection.js";

/**
 * Registers Health and both reflection versions. Reflection describes
 * `appServices`, the standard services and `extraFiles`.
 */
export function registerStandardServices(
  router: ConnectRouter,
  health: HealthStatus,
  appServices: readonly DescService[],
  extraFiles: readonly DescFile[] = [],
): void {
  const reflection = reflectionFor([...appServices, Health, ServerReflection, ServerReflectionV1alpha], extraFiles);
  router.service(Health, healthService(health));
  router.service(ServerReflection, reflection.v1());
  router.service(ServerReflectionV1alpha, reflection.v1alpha());
}
