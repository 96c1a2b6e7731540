// The profile domain: cache-aside reads, and writes that commit (with their
// outbox event), invalidate, then publish.

import { errorSummary, type Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { ChangeEvent } from "../events/change-event.js";
import type { CacheAside, Entity, Outcome } from "./cache-aside.js";
import { decodePreferences, decodeProfile, encodePreferences, encodeProfile } from "./cache-codec.js";
import type { CacheKeys } from "./cache-keys.js";
import { NotFoundError } from "./errors.js";
import type { PreferencesPatch, PreferencesRecord, ProfilePatch, ProfileRecord } from "./records.js";
import type { ProfileStore } from "./repository.js";

export interface ProfilesOptions {
  profileTtlSeconds: number;
  preferencesTtlSeconds: number;
}

export interface ProfileWithPreferences {
  profile: Outcome<ProfileRecord>;
  preferences?: Outcome<PreferencesRecord>;
}

export class Profiles {
  readonly profileEntity: Entity<ProfileRecord>;
  readonly preferencesEntity: Entity<PreferencesRecord>;

  constructor(
    private readonly store: ProfileStore,
    private readonly cache: CacheAside,
    private readonly keys: CacheKeys,
    /** Told about every committed change, after the cache was invalidated. Must not throw. */
    private readonly onCommitted: (event: ChangeEvent) => Promise<void>,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    options: ProfilesOptions,
  ) {
    this.profileEntity = {
      type: "profile",
      ttlSeconds: options.profileTtlSeconds,
      key: keys.profile,
      encode: encodeProfile,
      decode: decodeProfile,
      load: (ids) => store.getProfiles(ids),
    };
    this.preferencesEntity = {
      type: "preferences",
      ttlSeconds: options.preferencesTtlSeconds,
      key: keys.preferences,
      encode: encodePreferences,
      decode: decodePreferences,
      load: (ids) => store.getPreferences(ids),
    };
  }

  /** The profile, and its preferences when asked: one cache round trip for both. */
  async getProfile(userId: string, includePreferences: boolean): Promise<ProfileWithPreferences> {
    if (!includePreferences) {
      const profile = await this.cache.get(this.profileEntity, userId);
      if (profile.value === null) throw new NotFoundError("profile");
      return { profile };
    }
    const [profile, preferences] = await this.cache.read([
      { entity: this.profileEntity, id: userId },
      { entity: this.preferencesEntity, id: userId },
    ]);
    if (profile!.value === null) throw new NotFoundError("profile");
    return {
      profile: profile as Outcome<ProfileRecord>,
      preferences: preferences as Outcome<PreferencesRecord>,
    };
  }

  /** Outcomes aligned with `userIds`; a null value means no such profile. */
  async batchGetProfiles(userIds: readonly string[]): Promise<Outcome<ProfileRecord>[]> {
    const outcomes = await this.cache.read(userIds.map((id) => ({ entity: this.profileEntity, id })));
    return outcomes as Outcome<ProfileRecord>[];
  }

  async getPreferences(userId: string): Promise<Outcome<PreferencesRecord>> {
    const preferences = await this.cache.get(this.preferencesEntity, userId);
    if (preferences.value === null) throw new NotFoundError("preferences");
    return preferences;
  }

  async updateProfile(
    userId: string,
    patch: ProfilePatch,
    expectedVersion?: number,
  ): Promise<ProfileRecord> {
    const { record, event } = await this.store.upsertProfile(userId, patch, expectedVersion);
    await this.afterCommit(userId, [this.keys.profile(userId)], event);
    return record;
  }

  async updatePreferences(
    userId: string,
    patch: PreferencesPatch,
    expectedVersion?: number,
  ): Promise<PreferencesRecord> {
    const { record, event } = await this.store.upsertPreferences(userId, patch, expectedVersion);
    await this.afterCommit(userId, [this.keys.preferences(userId)], event);
    return record;
  }

  async deleteProfile(userId: string, expectedVersion?: number): Promise<void> {
    const event = await this.store.deleteProfile(userId, expectedVersion);
    await this.afterCommit(userId, [this.keys.profile(userId), this.keys.preferences(userId)], event);
  }

  /**
   * Invalidate, then publish. Both are issued in the same tick on the same
   * Redis connection, so they travel in one pipelined round trip and Redis
   * still runs the DEL before the PUBLISH: a subscriber that reads the cache
   * on an event never finds the old value.
   */
  private async afterCommit(userId: string, keys: string[], event: ChangeEvent): Promise<void> {
    await Promise.all([this.invalidate(userId, keys), this.onCommitted(event)]);
  }

  // The write has committed, so a cache failure must not fail the call: the
  // stale entry expires with its TTL, and the failure is counted.
  private async invalidate(userId: string, keys: string[]): Promise<void> {
    try {
      await this.cache.invalidate(keys);
    } catch (err) {
      this.metrics.invalidationFailures.inc();
      this.log.error({ user_id: userId, err: errorSummary(err) }, "cache invalidation failed");
    }
  }
}
