import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  PreferencesSchema,
  ProfileSchema,
  type Preferences,
  type Profile,
} from "../../gen/profile/v1/profile_pb.js";
import { etagOf, type PreferencesRecord, type ProfileRecord } from "./records.js";

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
