// A real @grpc/grpc-js client for ProfileService, the way internal services
// call it. Messages are (de)serialized with the generated protobuf-es schemas.

import * as grpc from "@grpc/grpc-js";
import {
  fromBinary,
  toBinary,
  create,
  type DescMessage,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { ProfileService } from "../../gen/profile/v1/profile_pb.js";
import { BadRequestSchema, type BadRequest_FieldViolation } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

type Methods = (typeof ProfileService)["method"];
type MethodName = keyof Methods;

export interface GrpcProfileClient {
  unary<M extends Exclude<MethodName, "watchProfileEvents">>(
    method: M,
    request: MessageInitShape<Methods[M]["input"]>,
    token?: string,
  ): Promise<MessageShape<Methods[M]["output"]>>;
  stream(
    request: MessageInitShape<Methods["watchProfileEvents"]["input"]>,
    token?: string,
  ): grpc.ClientReadableStream<MessageShape<Methods["watchProfileEvents"]["output"]>>;
  close(): void;
}

export function grpcProfileClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  channelOptions?: grpc.ChannelOptions,
): GrpcProfileClient {
  const client = genericClient(ProfileService, address, credentials, channelOptions);

  const metadata = (token?: string) => {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set("authorization", `Bearer ${token}`);
    return md;
  };

  return {
    unary(method, request, token) {
      const desc = ProfileService.method[method];
      return new Promise((resolve, reject) => {
        client[method]!.call(
          client,
          create(desc.input as DescMessage, request as never),
          metadata(token),
          { deadline: Date.now() + 20_000 },
          (err: grpc.ServiceError | null, res: never) => (err ? reject(err) : resolve(res)),
        );
      });
    },
    stream(request, token) {
      return client.watchProfileEvents!.call(
        client,
        create(ProfileService.method.watchProfileEvents.input, request),
        metadata(token),
      ) as grpc.ClientReadableStream<never>;
    },
    close: () => client.close(),
  };
}

/** A grpc-js client for any generated service, (de)serializing with its protobuf-es schemas. */
export function genericClient(
  service: DescService,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  channelOptions?: grpc.ChannelOptions,
): Record<string, (...args: unknown[]) => unknown> & grpc.Client {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: method.methodKind === "server_streaming",
      requestSerialize: (m) => Buffer.from(toBinary(method.input, m as never)),
      requestDeserialize: (b: Buffer) => fromBinary(method.input, b),
      responseSerialize: (m) => Buffer.from(toBinary(method.output, m as never)),
      responseDeserialize: (b: Buffer) => fromBinary(method.output, b),
    };
  }
  const Client = grpc.makeGenericClientConstructor(definition, service.name);
  return new Client(address, credentials, channelOptions) as unknown as Record<
    string,
    (...args: unknown[]) => unknown
  > &
    grpc.Client;
}

/** The field violations in a grpc-js error's google.rpc.Status details. */
export function fieldViolations(err: grpc.ServiceError): BadRequest_FieldViolation[] {
  const raw = err.metadata.get("grpc-status-details-bin")[0];
  if (raw === undefined) return [];
  const status = fromBinary(StatusSchema, raw as Buffer);
  return status.details.flatMap((any) => anyUnpack(any, BadRequestSchema)?.fieldViolations ?? []);
}

export { grpc };
