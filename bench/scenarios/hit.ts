// Hit (GetProfile on a warm key, 64 in flight) and Batch (BatchGetProfiles of
// 100 warm ids), each next to F-rpc with the same generator and shape.

import { GetProfileRequestSchema, GetProfileResponseSchema, BatchGetProfilesRequestSchema, BatchGetProfilesResponseSchema } from "../../gen/profile/v1/profile_pb.js";
import type { BenchContext } from "../context.js";
import { decodeUnary, GrpcStatus, requestFrame } from "../grpc-wire.js";
import { profileId } from "../ids.js";
import { interleaved, type Measurement } from "../measurement.js";
import { RPC_FLOOR, unauthenticatedGetProfile, type RpcFloor } from "../rpc-floor.js";
import { bearer } from "../tokens.js";
import { BenchFailure } from "../validate.js";
import { measureFixedCall } from "./fixed.js";

export const BATCH_SIZE = 100;

export async function hitAndBatch(ctx: BenchContext): Promise<Measurement[]> {
  const [floor, target] = await interleaved(ctx.options.rounds, [() => rpcFloor(ctx, "F-rpc", RPC_FLOOR), () => hit(ctx)]);
  return [
    floor!,
    target!,
    await batch(ctx),
    await rpcFloor(ctx, "F-rpc (UNAUTHENTICATED)", unauthenticatedGetProfile(profileId(ctx.ranges.hot))),
  ];
}

export function rpcFloor(ctx: BenchContext, name: string, floor: RpcFloor): Promise<Measurement> {
  return measureFixedCall(ctx, name, "floor", floor.call, {
    status: floor.expectStatus,
    logCode: floor.logCode,
    notes: [floor.label],
  });
}

export function hit(ctx: BenchContext): Promise<Measurement> {
  const hotId = profileId(ctx.ranges.hot);
  return measureFixedCall(
    ctx,
    "Hit",
    "scenario",
    {
      path: "/profile.v1.ProfileService/GetProfile",
      frame: requestFrame(GetProfileRequestSchema, { userId: hotId }),
      headers: bearer(ctx.tokens.hotUser),
    },
    {
      status: GrpcStatus.OK,
      logCode: "OK",
      checkReply: (body) => {
        if (decodeUnary(GetProfileResponseSchema, body).profile?.userId !== hotId) {
          throw new BenchFailure("Hit: the reply is not the requested profile");
        }
      },
      allCached: true,
      notes: ["one warm key: h2load sends one fixed body and token"],
    },
  );
}

export function batch(ctx: BenchContext): Promise<Measurement> {
  const ids = Array.from({ length: BATCH_SIZE }, (_, i) => profileId(i));
  return measureFixedCall(
    ctx,
    "Batch",
    "scenario",
    {
      path: "/profile.v1.ProfileService/BatchGetProfiles",
      frame: requestFrame(BatchGetProfilesRequestSchema, { userIds: ids }),
      headers: bearer(ctx.tokens.reader),
    },
    {
      status: GrpcStatus.OK,
      logCode: "OK",
      itemsPerCall: BATCH_SIZE,
      allCached: true,
      checkReply: (body) => {
        const reply = decodeUnary(BatchGetProfilesResponseSchema, body);
        if (reply.profiles.length !== BATCH_SIZE) {
          throw new BenchFailure(`Batch: ${reply.profiles.length} profiles in the reply, expected ${BATCH_SIZE}`);
        }
      },
      notes: [`${BATCH_SIZE} warm ids per call; items/s counts profiles`],
    },
  );
}
