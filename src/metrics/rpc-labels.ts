// go-grpc-prometheus' label values, shared by the per-RPC metrics and the
// series exported at zero from startup.

import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";

/** go-grpc-prometheus' grpc_type values. */
export type GrpcType = "unary" | "client_stream" | "server_stream" | "bidi_stream";

export interface RpcLabels {
  grpc_service: string;
  grpc_method: string;
  grpc_type: GrpcType;
}

/** Connect's Code has no member for success; gRPC calls it OK (0). */
export const OK = 0 as Code;

/** Every status code, OK first, in wire order. */
export const allCodes: readonly Code[] = [OK, ...Object.values(Code).filter((c): c is Code => typeof c === "number")];

/** The grpc_code label: Go's codes.Code names ("OK", "Canceled", "InvalidArgument", …), as go-grpc-prometheus writes them. */
export function codeName(code: number): string {
  return code === 0 ? "OK" : (Code[code] ?? String(code));
}

const grpcTypes: Record<DescMethod["methodKind"], GrpcType> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

export function rpcLabels(method: DescMethod): RpcLabels {
  return { grpc_service: method.parent.typeName, grpc_method: method.name, grpc_type: grpcTypes[method.methodKind] };
}
