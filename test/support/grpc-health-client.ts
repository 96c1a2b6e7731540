// A real @grpc/grpc-js client for grpc.health.v1.Health, as probes and
// load balancers call it. Messages go through the generated protobuf-es schemas.

import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import {
  Health,
  type HealthCheckResponse,
  type HealthListResponse,
} from "../../gen/health/v1/health_pb.js";

export interface GrpcHealthClient {
  check(service: string): Promise<HealthCheckResponse>;
  list(): Promise<HealthListResponse>;
  watch(service: string): grpc.ClientReadableStream<HealthCheckResponse>;
  close(): void;
}

export function grpcHealthClient(address: string): GrpcHealthClient {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of Health.methods) {
    definition[method.localName] = {
      path: `/${Health.typeName}/${method.name}`,
      requestStream: false,
      responseStream: method.methodKind === "server_streaming",
      requestSerialize: (m) => Buffer.from(toBinary(method.input as DescMessage, m as never)),
      requestDeserialize: (b: Buffer) => fromBinary(method.input, b),
      responseSerialize: (m) => Buffer.from(toBinary(method.output as DescMessage, m as never)),
      responseDeserialize: (b: Buffer) => fromBinary(method.output, b),
    };
  }
  const Client = grpc.makeGenericClientConstructor(definition, "Health");
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as Record<
    string,
    (...args: unknown[]) => unknown
  > &
    grpc.Client;

  const unary = <T>(method: "check" | "list", request: unknown) =>
    new Promise<T>((resolve, reject) => {
      client[method]!.call(
        client,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)),
      );
    });

  return {
    check: (service) => unary("check", create(Health.method.check.input, { service })),
    list: () => unary("list", create(Health.method.list.input, {})),
    watch: (service) =>
      client.watch!.call(client, create(Health.method.watch.input, { service }), new grpc.Metadata()) as grpc.ClientReadableStream<HealthCheckResponse>,
    close: () => client.close(),
  };
}
