// A real @grpc/grpc-js client for grpc.health.v1.Health, as probes and
// load balancers call it. Messages go through the generated protobuf-es schemas.

import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { Health, type HealthCheckResponse, type HealthListResponse } from "../../gen/health/v1/health_pb.js";
import { genericClient } from "./grpc-client.js";

export interface GrpcHealthClient {
  check(service: string): Promise<HealthCheckResponse>;
  list(): Promise<HealthListResponse>;
  watch(service: string): grpc.ClientReadableStream<HealthCheckResponse>;
  close(): void;
}

export function grpcHealthClient(address: string): GrpcHealthClient {
  const client = genericClient(Health, address);

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
      client.watch!.call(
        client,
        create(Health.method.watch.input, { service }),
        new grpc.Metadata(),
      ) as grpc.ClientReadableStream<HealthCheckResponse>,
    close: () => client.close(),
  };
}
