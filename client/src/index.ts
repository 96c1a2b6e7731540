// @profile-service/client: the public surface.

export { ProfileClient } from "./profile-client.js";
export type {
  CallOptions,
  PreferencesChange,
  ProfileChange,
  ProfileClientOptions,
  RetryOptions,
} from "./profile-client.js";
export type { WatchItem, WatchOptions, WatchRequest, WatchRetry } from "./watch.js";
export { FileTokenStore, MemoryTokenStore, type ResumeTokenStore } from "./token-store.js";
export type { ReadModifyWriteOptions } from "./read-modify-write.js";
export type { BackoffOptions } from "./backoff.js";
export { DEFAULT_CHANNEL_OPTIONS } from "./channels.js";
export { FINAL_WATCH_CODES, codeOf, isServiceError, refusesToken } from "./errors.js";
export { idempotentMethods, isIdempotent } from "./idempotency.js";
export { StreamIdleError } from "./stream-reader.js";
export { status, type ServiceError } from "@grpc/grpc-js";
export { EventType, type Preferences, type Profile, type ProfileEvent } from "../../gen/profile/v1/profile_pb.js";
