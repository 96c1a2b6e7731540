import type { grpc } from "./grpc-client.js";

const OK = 0;

/** The gRPC status code a call ended with (0 for OK). */
export async function codeOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return OK;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}
