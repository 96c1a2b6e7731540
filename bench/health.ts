// grpc.health.v1.Health (the standard health-checking protocol), described at
// runtime so the bench needs no generated code of its own: the F-rpc floor
// calls Health/Check until the service ships its own health service.

import { create, createFileRegistry, type DescMessage, type DescService } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

const file = create(FileDescriptorProtoSchema, {
  name: "grpc/health/v1/health.proto",
  package: "grpc.health.v1",
  syntax: "proto3",
  messageType: [
    {
      name: "HealthCheckRequest",
      field: [
        { name: "service", number: 1, type: FieldDescriptorProto_Type.STRING, label: FieldDescriptorProto_Label.OPTIONAL, jsonName: "service" },
      ],
    },
    {
      name: "HealthCheckResponse",
      field: [
        {
          name: "status",
          number: 1,
          type: FieldDescriptorProto_Type.ENUM,
          typeName: ".grpc.health.v1.HealthCheckResponse.ServingStatus",
          label: FieldDescriptorProto_Label.OPTIONAL,
          jsonName: "status",
        },
      ],
      enumType: [
        {
          name: "ServingStatus",
          value: [
            { name: "UNKNOWN", number: 0 },
            { name: "SERVING", number: 1 },
            { name: "NOT_SERVING", number: 2 },
            { name: "SERVICE_UNKNOWN", number: 3 },
          ],
        },
      ],
    },
  ],
  service: [
    {
      name: "Health",
      method: [
        { name: "Check", inputType: ".grpc.health.v1.HealthCheckRequest", outputType: ".grpc.health.v1.HealthCheckResponse" },
      ],
    },
  ],
});

const registry = createFileRegistry(file, () => undefined);

export const Health = registry.getService("grpc.health.v1.Health") as DescService;
export const HealthCheckRequestSchema = registry.getMessage("grpc.health.v1.HealthCheckRequest") as DescMessage;
export const HealthCheckResponseSchema = registry.getMessage("grpc.health.v1.HealthCheckResponse") as DescMessage;
export const SERVING = 1;
