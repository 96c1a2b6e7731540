// Thin gRPC handlers: authenticate, validate, call the domain, shape the reply.

import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { ProfileService } from "../../gen/profile/v1/profile_pb.js";
import { mayAccess, Scope, type Access, type Caller } from "../auth/caller.js";
import { cacheStatusKey, callerKey, targetUserKey } from "../server/context.js";
import { permissionDenied } from "../server/errors.js";
import type { Profiles } from "./profiles.js";
import { preferencesToProto, profileToProto } from "./proto-mapping.js";
import {
  checkUserIds,
  expectedVersion,
  preferencesPatch,
  profilePatch,
  targetUserId,
  Violations,
} from "./validation.js";

export function profileHandlers(profiles: Profiles): Omit<ServiceImpl<typeof ProfileService>, "watchProfileEvents"> {
  return {
    async getProfile(req, ctx) {
      const userId = authorizedTarget(ctx, req.userId, "read");
      const { profile, preferences } = await profiles.getProfile(userId, req.includePreferences);
      ctx.values.set(cacheStatusKey, profile.status);
      return {
        profile: profileToProto(profile.value!),
        preferences: preferences?.value ? preferencesToProto(preferences.value) : undefined,
      };
    },

    async batchGetProfiles(req, ctx) {
      const caller = callerOf(ctx);
      const v = new Violations();
      checkUserIds(req.userIds, "user_ids", v);
      v.check();
      if (!req.userIds.every((id) => mayAccess(caller, id, "read"))) {
        throw permissionDenied(`reading other users' profiles needs the ${Scope.read} scope`);
      }
      const outcomes = await profiles.batchGetProfiles(req.userIds);
      ctx.values.set(cacheStatusKey, outcomes.every((o) => o.status === "hit") ? "hit" : "miss");
      const found = [];
      const missing = [];
      for (const [i, o] of outcomes.entries()) {
        if (o.value === null) missing.push(req.userIds[i]!);
        else found.push(profileToProto(o.value));
      }
      return { profiles: found, missingUserIds: missing };
    },

    async updateProfile(req, ctx) {
      const v = new Violations();
      const userId = targetUserId(req.userId, callerOf(ctx).subject, "user_id", v);
      const patch = profilePatch(req.profile, req.updateMask, v);
      const version = expectedVersion(req.etag, "etag", v);
      v.check();
      authorize(ctx, userId, "write");
      const record = await profiles.updateProfile(userId, patch, version);
      return { profile: profileToProto(record) };
    },

    async deleteProfile(req, ctx) {
      const v = new Violations();
      const userId = targetUserId(req.userId, callerOf(ctx).subject, "user_id", v);
      const version = expectedVersion(req.etag, "etag", v);
      v.check();
      authorize(ctx, userId, "write");
      await profiles.deleteProfile(userId, version);
      return {};
    },

    async getPreferences(req, ctx) {
      const userId = authorizedTarget(ctx, req.userId, "read");
      const preferences = await profiles.getPreferences(userId);
      ctx.values.set(cacheStatusKey, preferences.status);
      return { preferences: preferencesToProto(preferences.value!) };
    },

    async updatePreferences(req, ctx) {
      const v = new Violations();
      const userId = targetUserId(req.userId, callerOf(ctx).subject, "user_id", v);
      const patch = preferencesPatch(req.preferences, req.updateMask, v);
      const version = expectedVersion(req.etag, "etag", v);
      v.check();
      authorize(ctx, userId, "write");
      const record = await profiles.updatePreferences(userId, patch, version);
      return { preferences: preferencesToProto(record) };
    },
  };
}

export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  // The auth interceptor guards every method of this service; reaching here without a caller is a wiring bug.
  if (caller === undefined) throw new ConnectError("unauthenticated", Code.Unauthenticated);
  return caller;
}

function authorizedTarget(ctx: HandlerContext, requested: string, access: Access): string {
  const v = new Violations();
  const userId = targetUserId(requested, callerOf(ctx).subject, "user_id", v);
  v.check();
  authorize(ctx, userId, access);
  return userId;
}

function authorize(ctx: HandlerContext, userId: string, access: Access): void {
  ctx.values.set(targetUserKey, userId);
  if (!mayAccess(callerOf(ctx), userId, access)) {
    throw permissionDenied(`acting on another user's data needs the ${Scope[access]} scope`);
  }
}
