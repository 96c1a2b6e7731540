// ProfileService, every method: authorize, validate, call the domain, shape
// the reply. Handlers see a verified caller (api/call.ts authenticates) and
// speak our own types only; the transports in server/ adapt them.

import { create, type MessageShape } from "@bufbuild/protobuf";
import { ProfileService } from "../../gen/profile/v1/profile_pb.js";
import type { Caller } from "../auth/caller.js";
import type { ChangeType } from "../events/change-event.js";
import type { EventFilter } from "../events/outbox.js";
import type { WatchHub } from "../events/watch-hub.js";
import type { WatchSlots } from "../events/watch-slots.js";
import type { Profiles } from "../profiles/profiles.js";
import { authorizeBatch, authorizeTarget, authorizeWatch } from "./access.js";
import type { UnaryHandler, StreamHandler } from "./call.js";
import type { RpcContext } from "./context.js";
import { changeTypeOf, preferencesToProto, profileToProto, watchItemToProto } from "./proto-mapping.js";
import { replyOf } from "./reply-memo.js";
import { Code, RpcError } from "./status.js";
import {
  checkUserIds,
  expectedVersion,
  preferencesPatch,
  profilePatch,
  targetUserId,
  Violations,
} from "./validation.js";

type Methods = (typeof ProfileService)["method"];
type In<M extends keyof Methods> = MessageShape<Methods[M]["input"]>;
type Out<M extends keyof Methods> = MessageShape<Methods[M]["output"]>;
type UnaryName = Exclude<keyof Methods, "watchProfileEvents">;

export type ProfileApi = { [M in UnaryName]: UnaryHandler<In<M>, Out<M>> } & {
  watchProfileEvents: StreamHandler<In<"watchProfileEvents">, Out<"watchProfileEvents">>;
};

export interface ProfileApiDeps {
  profiles: Profiles;
  hub: WatchHub;
  slots: WatchSlots;
}

const out = ProfileService.method;

export function profileApi({ profiles, hub, slots }: ProfileApiDeps): ProfileApi {
  return {
    async getProfile(req, ctx) {
      const v = new Violations();
      const userId = checked(ctx, v, authorizedTarget(ctx, req.userId, "read", v));
      const { profile, preferences } = await profiles.getProfile(userId, req.includePreferences);
      // Any part served from a grace copy makes the answer stale.
      ctx.cacheStatus = preferences?.status === "stale" ? "stale" : profile.status;
      const prefs = preferences?.value ?? undefined;
      return replyOf(profile.value!, prefs, () =>
        create(out.getProfile.output, {
          profile: profileToProto(profile.value!),
          preferences: prefs ? preferencesToProto(prefs) : undefined,
        }),
      );
    },

    async batchGetProfiles(req, ctx) {
      authorizeBatch(callerOf(ctx), req.userIds);
      const v = new Violations();
      checkUserIds(req.userIds, "user_ids", v);
      v.check();
      const outcomes = await profiles.batchGetProfiles(req.userIds);
      ctx.cacheStatus = outcomes.some((o) => o.status === "stale")
        ? "stale"
        : outcomes.every((o) => o.status === "hit")
          ? "hit"
          : "miss";
      const found = [];
      const missing = [];
      for (const [i, o] of outcomes.entries()) {
        if (o.value === null) missing.push(req.userIds[i]!);
        else found.push(profileToProto(o.value));
      }
      return create(out.batchGetProfiles.output, { profiles: found, missingUserIds: missing });
    },

    async updateProfile(req, ctx) {
      const { userId, patch, version } = updateRequest(ctx, req, (v) => profilePatch(req.profile, req.updateMask, v));
      const record = await profiles.updateProfile(userId, patch, version);
      return create(out.updateProfile.output, { profile: profileToProto(record) });
    },

    async deleteProfile(req, ctx) {
      const v = new Violations();
      const userId = authorizedTarget(ctx, req.userId, "write", v);
      const version = expectedVersion(req.etag, "etag", v);
      checked(ctx, v, userId);
      await profiles.deleteProfile(userId, version);
      return create(out.deleteProfile.output, {});
    },

    async getPreferences(req, ctx) {
      const v = new Violations();
      const userId = checked(ctx, v, authorizedTarget(ctx, req.userId, "read", v));
      const preferences = await profiles.getPreferences(userId);
      ctx.cacheStatus = preferences.status;
      return replyOf(preferences.value!, undefined, () =>
        create(out.getPreferences.output, { preferences: preferencesToProto(preferences.value!) }),
      );
    },

    async updatePreferences(req, ctx) {
      const { userId, patch, version } = updateRequest(ctx, req, (v) =>
        preferencesPatch(req.preferences, req.updateMask, v),
      );
      const record = await profiles.updatePreferences(userId, patch, version);
      return create(out.updatePreferences.output, { preferences: preferencesToProto(record) });
    },

    async *watchProfileEvents(req, ctx) {
      const caller = callerOf(ctx);
      authorizeWatch(caller, req.userIds);
      const v = new Violations();
      checkUserIds(req.userIds, "user_ids", v, { allowEmpty: true });
      const types: ChangeType[] = [];
      req.types.forEach((t, i) => {
        const type = changeTypeOf(t);
        if (type === undefined) v.add(`types[${i}]`, "must be PROFILE_UPDATED, PROFILE_DELETED or PREFERENCES_UPDATED");
        else types.push(type);
      });
      const from = req.resumeToken === "" ? undefined : hub.resumePoint(req.resumeToken);
      if (req.resumeToken !== "" && from === undefined) {
        v.add("resume_token", "is not a resume token from this service; omit it to watch from now");
      }
      v.check();
      if (req.userIds.length === 1) ctx.targetUser = req.userIds[0];

      const filter: EventFilter = { userIds: [...new Set(req.userIds)], types };
      // Past WATCH_MAX_STREAMS_PER_CONNECTION or _PER_CALLER: RESOURCE_EXHAUSTED, before any work.
      const release = slots.acquire(ctx.connection, caller.subject);
      let watcher;
      try {
        watcher = await hub.open(filter, from, (reason) => ctx.resetStream(reason));
      } catch (err) {
        release();
        throw err;
      }
      const onAbort = () => watcher.close();
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      // The call may have ended while the hub was opening: no abort event will come.
      if (ctx.signal.aborted) watcher.close();
      try {
        for await (const item of watcher) {
          // Traced: a span from handing the event on to its being written, linked to the write's span.
          const delivery =
            item.kind === "event" && ctx.span !== undefined
              ? ctx.span.delivery({
                  eventId: item.event.eventId,
                  type: item.event.type,
                  writtenBy: item.event.traceContext,
                })
              : undefined;
          try {
            yield watchItemToProto(item);
          } finally {
            delivery?.end();
          }
        }
      } finally {
        ctx.signal.removeEventListener("abort", onAbort);
        watcher.close();
        release();
      }
    },
  };
}

function callerOf(ctx: RpcContext): Caller {
  // api/call.ts authenticates every call first; reaching here without a caller is a wiring bug.
  if (ctx.caller === undefined) throw new RpcError("unauthenticated", Code.Unauthenticated);
  return ctx.caller;
}

/**
 * The user a request targets, once the caller may act on them: throws
 * PERMISSION_DENIED before anything is validated, then adds the user_id's
 * own violations to `v`.
 */
function authorizedTarget(ctx: RpcContext, requested: string, access: "read" | "write", v: Violations): string {
  const caller = callerOf(ctx);
  authorizeTarget(caller, requested, access);
  return targetUserId(requested, caller.subject, "user_id", v);
}

/** Once the request is valid, the log line may name its user. */
function checked(ctx: RpcContext, v: Violations, userId: string): string {
  v.check();
  ctx.targetUser = userId;
  return userId;
}

/** An update's target, patch and precondition: authorized first, then every field validated together. */
function updateRequest<P>(
  ctx: RpcContext,
  req: { userId: string; etag: string },
  patchOf: (v: Violations) => P,
): { userId: string; patch: P; version: number | undefined } {
  const v = new Violations();
  const userId = authorizedTarget(ctx, req.userId, "write", v);
  const patch = patchOf(v);
  const version = expectedVersion(req.etag, "etag", v);
  return { userId: checked(ctx, v, userId), patch, version };
}
