// WatchProfileEvents: validate and authorize, then stream the watcher's items.

import * as http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type * as http from "node:http";
import {
  EventType,
  WatchProfileEventsResponseSchema,
  type WatchProfileEventsRequest,
  type WatchProfileEventsResponse,
} from "../../gen/profile/v1/profile_pb.js";
import { Scope } from "../auth/caller.js";
import { callerOf } from "../profiles/handlers.js";
import { isUserId, MAX_BATCH_IDS, Violations } from "../profiles/validation.js";
import { targetUserKey } from "../server/context.js";
import { permissionDenied } from "../server/errors.js";
import type { ChangeType } from "./change-event.js";
import type { EventFilter } from "./outbox.js";
import { decodeResumeToken, encodeResumeToken } from "./position.js";
import type { WatchHub } from "./watch-hub.js";
import type { WatchItem } from "./watcher.js";

/** The node request behind a call, so a stuck stream can be reset at the HTTP/2 level. */
export const nodeRequestKey = createContextKey<http.IncomingMessage | http2.Http2ServerRequest | undefined>(undefined, { description: "node request" });

const typeOf: Record<number, ChangeType | undefined> = {
  [EventType.PROFILE_UPDATED]: "profile_updated",
  [EventType.PROFILE_DELETED]: "profile_deleted",
  [EventType.PREFERENCES_UPDATED]: "preferences_updated",
};
const eventTypeOf: Record<ChangeType, EventType> = {
  profile_updated: EventType.PROFILE_UPDATED,
  profile_deleted: EventType.PROFILE_DELETED,
  preferences_updated: EventType.PREFERENCES_UPDATED,
};

export function watchHandler(hub: WatchHub) {
  return async function* watchProfileEvents(
    req: WatchProfileEventsRequest,
    ctx: HandlerContext,
  ): AsyncGenerator<WatchProfileEventsResponse> {
    const caller = callerOf(ctx);
    const v = new Violations();
    if (req.userIds.length > MAX_BATCH_IDS) v.add("user_ids", `at most ${MAX_BATCH_IDS} user ids are allowed`);
    req.userIds.slice(0, MAX_BATCH_IDS + 1).forEach((id, i) => {
      if (!isUserId(id)) v.add(`user_ids[${i}]`, "must be a canonical lowercase UUID");
    });
    const types: ChangeType[] = [];
    req.types.forEach((t, i) => {
      const type = typeOf[t];
      if (type === undefined) v.add(`types[${i}]`, "must be PROFILE_UPDATED, PROFILE_DELETED or PREFERENCES_UPDATED");
      else types.push(type);
    });
    const from = req.resumeToken === "" ? undefined : decodeResumeToken(req.resumeToken);
    if (req.resumeToken !== "" && from === undefined) {
      v.add("resume_token", "is not a resume token from this service; omit it to watch from now");
    }
    v.check();
    if (!caller.scopes.has(Scope.watch)) {
      if (req.userIds.length === 0 || req.userIds.some((id) => id !== caller.subject)) {
        throw permissionDenied(`watching other users, or everyone, needs the ${Scope.watch} scope; set user_ids to your own id`);
      }
    }
    if (req.userIds.length === 1) ctx.values.set(targetUserKey, req.userIds[0]);

    const filter: EventFilter = { userIds: [...new Set(req.userIds)], types };
    const watcher = await hub.open(filter, from, (reason) =>
      resetStream(
        ctx,
        reason === "overflow" ? http2.constants.NGHTTP2_ENHANCE_YOUR_CALM : http2.constants.NGHTTP2_REFUSED_STREAM,
      ),
    );
    const onAbort = () => watcher.close();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const item of watcher) yield toResponse(item);
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      watcher.close();
    }
  };
}

/**
 * Ends a stream that cannot take more data at the HTTP/2 level, since a status
 * in trailers would queue behind the data it cannot send. Clients map the reset
 * codes: ENHANCE_YOUR_CALM to RESOURCE_EXHAUSTED, REFUSED_STREAM to UNAVAILABLE.
 */
function resetStream(ctx: HandlerContext, code: number): void {
  const req = ctx.values.get(nodeRequestKey);
  if (req !== undefined && "stream" in req) req.stream.close(code);
  else req?.socket?.destroy();
}

function toResponse(item: WatchItem): WatchProfileEventsResponse {
  if (item.kind === "bookmark") {
    return create(WatchProfileEventsResponseSchema, {
      kind: { case: "bookmark", value: { resumeToken: encodeResumeToken(item.position) } },
    });
  }
  const e = item.event;
  return create(WatchProfileEventsResponseSchema, {
    kind: {
      case: "event",
      value: {
        eventId: e.eventId,
        type: eventTypeOf[e.type],
        userId: e.userId,
        updatedFields: [...e.updatedFields],
        eventTime: timestampFromDate(e.time),
        resumeToken: encodeResumeToken(e.position),
      },
    },
  });
}
