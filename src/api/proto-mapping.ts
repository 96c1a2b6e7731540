// Between our records and the generated messages, both ways.

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  EventType,
  PreferencesSchema,
  ProfileSchema,
  WatchProfileEventsResponseSchema,
  type Preferences,
  type Profile,
  type WatchProfileEventsResponse,
} from "../../gen/profile/v1/profile_pb.js";
import type { ChangeEvent, ChangeType } from "../events/change-event.js";
import type { WatchItem } from "../events/watcher.js";
import { etagOf, type PreferencesRecord, type ProfileRecord } from "../profiles/records.js";

export function profileToProto(r: ProfileRecord): Profile {
  return create(ProfileSchema, {
    userId: r.userId,
    firstName: r.firstName,
    lastName: r.lastName,
    bio: r.bio,
    avatarUrl: r.avatarUrl,
    phone: r.phone,
    createTime: timestampFromDate(r.createdAt),
    updateTime: timestampFromDate(r.updatedAt),
    etag: etagOf(r.version),
  });
}

export function preferencesToProto(r: PreferencesRecord): Preferences {
  return create(PreferencesSchema, {
    userId: r.userId,
    theme: r.theme,
    language: r.language,
    emailNotifications: r.emailNotifications,
    pushNotifications: r.pushNotifications,
    settings: r.settings,
    updateTime: timestampFromDate(r.updatedAt),
    etag: etagOf(r.version),
  });
}

/** The change type a request's EventType names, or undefined for one we do not know (UNSPECIFIED included). */
export function changeTypeOf(type: EventType): ChangeType | undefined {
  return changeTypes[type];
}

const changeTypes: Record<number, ChangeType | undefined> = {
  [EventType.PROFILE_UPDATED]: "profile_updated",
  [EventType.PROFILE_DELETED]: "profile_deleted",
  [EventType.PREFERENCES_UPDATED]: "preferences_updated",
};
const eventTypes: Record<ChangeType, EventType> = {
  profile_updated: EventType.PROFILE_UPDATED,
  profile_deleted: EventType.PROFILE_DELETED,
  preferences_updated: EventType.PREFERENCES_UPDATED,
};

// The hub offers one event object to every watcher: its message is built once, and
// (being the same object) encoded once by the transport too.
const eventMessages = new WeakMap<ChangeEvent, WatchProfileEventsResponse>();

export function watchItemToProto(item: WatchItem): WatchProfileEventsResponse {
  if (item.kind === "event") {
    let message = eventMessages.get(item.event);
    if (message === undefined) eventMessages.set(item.event, (message = eventToProto(item)));
    return message;
  }
  return create(WatchProfileEventsResponseSchema, {
    kind: { case: "bookmark", value: { resumeToken: item.resumeToken } },
  });
}

function eventToProto(item: WatchItem & { kind: "event" }): WatchProfileEventsResponse {
  const e = item.event;
  return create(WatchProfileEventsResponseSchema, {
    kind: {
      case: "event",
      value: {
        eventId: e.eventId,
        type: eventTypes[e.type],
        userId: e.userId,
        updatedFields: [...e.updatedFields],
        eventTime: timestampFromDate(e.time),
        resumeToken: item.resumeToken,
      },
    },
  });
}
