// ProfileService on grpc-js: each method hands its call to the API layer
// (api/call.ts, api/service.ts) and answers in grpc-js' terms.

import { once } from "node:events";
import type { DescMessage } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ProfileService } from "../../gen/profile/v1/profile_pb.js";
import type { Calls } from "../api/call.js";
import { CACHE_HEADER, type RpcContext } from "../api/context.js";
import type { ProfileApi } from "../api/service.js";
import { Code, RpcError } from "../api/status.js";
import type { Logger } from "../log/logger.js";
import { errorSummary } from "../log/logger.js";
import { decodeRequest, frameOnce } from "./grpc-codec.js";
import type { GrpcCall, GrpcCalls } from "./grpc-calls.js";
import { toGrpcStatus } from "./grpc-errors.js";

type Unary = (req: never, ctx: RpcContext) => Promise<unknown>;

export function grpcProfileService(
  api: ProfileApi,
  calls: Calls,
  tracked: GrpcCalls,
  log: Logger,
): grpc.UntypedServiceImplementation {
  const method = ProfileService.method;
  const unary =
    (handler: Unary, input: DescMessage): grpc.handleUnaryCall<Buffer, unknown> =>
    (call, callback) => {
      const record = tracked.callOf(call.metadata);
      expireIfLate(record, call.getDeadline());
      calls
        .unary(handler, record.ctx, () => decoded(record, input, call.request) as never)
        .then(
          (res) => {
            if (record.ctx.cacheStatus === "stale") call.sendMetadata(staleHeader());
            callback(null, res);
          },
          (err: unknown) => {
            const status = failed(record, err);
            callback(status);
          },
        );
    };
  return {
    getProfile: unary(api.getProfile, method.getProfile.input),
    batchGetProfiles: unary(api.batchGetProfiles, method.batchGetProfiles.input),
    updateProfile: unary(api.updateProfile, method.updateProfile.input),
    deleteProfile: unary(api.deleteProfile, method.deleteProfile.input),
    getPreferences: unary(api.getPreferences, method.getPreferences.input),
    updatePreferences: unary(api.updatePreferences, method.updatePreferences.input),
    watchProfileEvents: (call: grpc.ServerWritableStream<Buffer, unknown>) => {
      const record = tracked.callOf(call.metadata);
      expireIfLate(record, call.getDeadline());
      const { input, output } = method.watchProfileEvents;
      const messages = calls.stream(api.watchProfileEvents, record.ctx, () => decoded(record, input, call.request));
      writeFrames(call, record, messages, (message) => frameOnce(output, message))
        .then(
          () => call.end(),
          (err: unknown) => call.emit("error", failed(record, err)),
        )
        .catch((err: unknown) => log.warn({ err: errorSummary(err) }, "watch stream not completed"));
    },
  };
}

/**
 * Writes a server stream's messages straight to its HTTP/2 stream, as the
 * client reads them, with the stream's own (byte) backpressure. grpc-js'
 * writable sends one message per write completion, behind a 16-message
 * buffer: a burst of events (one per watcher, each encoded once) then
 * looked like a slow client and overflowed the watcher's queue. grpc-js
 * still sends the headers (before the first message) and the status
 * (trailers, at call.end() or on an error), so the framing stays its own.
 */
async function writeFrames<T>(
  call: grpc.ServerWritableStream<Buffer, unknown>,
  record: GrpcCall,
  messages: AsyncIterable<T>,
  frame: (message: T) => Buffer,
): Promise<void> {
  const { stream } = record;
  const signal = record.ctx.signal;
  let headersSent = false;
  for await (const message of messages) {
    if (signal.aborted || stream.destroyed || stream.closed) break;
    if (!headersSent) {
      call.sendMetadata(new grpc.Metadata());
      headersSent = true;
    }
    if (!stream.write(frame(message)) && !signal.aborted) {
      await once(stream, "drain", { signal }).catch(() => {});
    }
  }
}

function staleHeader(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(CACHE_HEADER, "stale");
  return md;
}

function decoded<D extends DescMessage>(record: GrpcCall, input: D, bytes: Buffer) {
  if (record.compressedWithoutEncoding) {
    throw new RpcError(
      "the message is flagged as compressed, but the request names no grpc-encoding",
      Code.InvalidArgument,
    );
  }
  return decodeRequest(input, bytes);
}

/** A call whose deadline passed before its handler ran starts no work (grpc-js answers DEADLINE_EXCEEDED). */
function expireIfLate(record: GrpcCall, deadline: grpc.Deadline): void {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(at) && at <= Date.now()) {
    record.abort(new RpcError("the call's deadline passed before it started", Code.DeadlineExceeded));
  }
}

function failed(record: GrpcCall, err: unknown): Partial<grpc.StatusObject> {
  const rpcError = err instanceof RpcError ? err : new RpcError("internal error", Code.Internal, [], { cause: err });
  record.error = rpcError;
  return toGrpcStatus(rpcError);
}
