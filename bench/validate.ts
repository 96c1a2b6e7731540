// Load generators see HTTP statuses; gRPC failures hide in trailers. Every
// scenario therefore (1) makes one call with the exact bytes and headers it
// will send and checks the grpc-status and the decoded reply, and (2) tallies
// the service's per-RPC log lines for the scenario's whole run, failing
// loudly if any call ended with an unexpected code.

import type { FixedCall } from "./fixed-call-load.js";
import { H2GrpcClient, type GrpcReply } from "./h2-client.js";
import { tallyLog, type LogTally } from "./service-log.js";
import { sleep, type ServiceProcess } from "./service.js";

export class BenchFailure extends Error {
  override name = "BenchFailure";
}

export async function sampleCall(baseUrl: string, call: FixedCall, expectStatus: number): Promise<GrpcReply> {
  const client = await H2GrpcClient.connect(baseUrl, 1);
  try {
    const reply = await client.call(call.path, call.frame, call.headers);
    if (reply.status !== expectStatus) {
      throw new BenchFailure(`${call.path}: expected grpc-status ${expectStatus}, got ${reply.status} (${reply.message})`);
    }
    return reply;
  } finally {
    client.close();
  }
}

/** Runs `body` and returns the service's log tally for it; throws if any RPC ended with another code. */
export async function withLogTally<T>(
  service: ServiceProcess,
  expectCodes: readonly string[],
  body: () => Promise<T>,
): Promise<{ result: T; tally: LogTally }> {
  const from = service.logSize();
  const result = await body();
  await sleep(100); // let the last log lines land
  const tally = tallyLog(service.logFile, from, service.logSize());
  // A timed run ends by cancelling the calls still in flight; the service logs those as Canceled.
  const unexpected = Object.entries(tally.codes).filter(([code]) => !expectCodes.includes(code) && code !== "Canceled");
  if (unexpected.length > 0) {
    throw new BenchFailure(
      `${service.name}: expected only ${expectCodes.join("/")} replies, the service logged ${JSON.stringify(tally.codes)}`,
    );
  }
  return { result, tally };
}
