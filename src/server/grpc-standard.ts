// Health checking and reflection on the gRPC port, from the packages the gRPC
// project maintains (grpc-health-check, @grpc/reflection). Health follows
// our HealthStatus; reflection describes the protobuf-es files in gen/.

import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, type ServingStatus as PackageStatus } from "grpc-health-check";
import { ServingStatus, type HealthStatus } from "./health.js";
import { withDependencies } from "./reflection.js";

export function addHealth(server: grpc.Server, health: HealthStatus): void {
  const implementation = new HealthImplementation();
  for (const [service, status] of health.all()) implementation.setStatus(service, statusName(status));
  health.watchAll((service, status) => implementation.setStatus(service, statusName(status)));
  implementation.addToServer(server);
}

/** Reflection over `files` and, transitively, everything they import (v1 and v1alpha). */
export function addReflection(server: grpc.Server, files: readonly DescFile[]): void {
  const fileDescriptorProtos = [...withDependencies(files).values()].map((f) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)),
  );
  // The package reads only fileDescriptorProtos from a proto-loader package definition.
  const definition = { files: { fileDescriptorProtos } } as unknown as ConstructorParameters<
    typeof ReflectionService
  >[0];
  new ReflectionService(definition).addToServer(server);
}

function statusName(status: ServingStatus): PackageStatus {
  switch (status) {
    case ServingStatus.SERVING:
      return "SERVING";
    case ServingStatus.NOT_SERVING:
      return "NOT_SERVING";
    default:
      return "UNKNOWN";
  }
}
