// The profile domain: cache-aside reads, and writes that commit (with their
// outbox event), then hand the event to their CommitListener (EventPublisher:
// invalidate, then publish).

import type { CommitListener } from "../events/commit-listener.js";
import { Lookup, type CacheAside, type Entity, type Outcome } from "../cache/cache-aside.js";
import { tracedRead } from "./cache-span.js";
import { decodePreferences, decodeProfile, encodePreferences, encodeProfile } from "./cache-codec.js";
import { sharedDecoder } from "./decoded-values.js";
import type { CacheKeys } from "../cache/cache-keys.js";
import { NotFoundError } from "./errors.js";
import type { PreferencesPatch, PreferencesRecord, ProfilePatch, ProfileRecord } from "./records.js";
import type { ProfileRepository } from "./repository.js";

export interface ProfilesDeps {
  repository: ProfileRepository;
  cache: CacheAside;
  keys: CacheKeys;
  /** Finishes every committed change before its write answers. */
  commits: CommitListener;
}

export interface ProfilesOptions {
  profileTtlSeconds: number;
  preferencesTtlSeconds: number;
}

/** The seed's TTLs: `profile:{user_id}` 300 s, `preferences:{user_id}` 600 s. */
export const PROFILES_DEFAULTS: ProfilesOptions = {
  profileTtlSeconds: 300,
  preferencesTtlSeconds: 600,
};

export interface ProfileWithPreferences {
  profile: Outcome<ProfileRecord>;
  preferences?: Outcome<PreferencesRecord>;
}

export class Profiles {
  readonly profileEntity: Entity<ProfileRecord>;
  readonly preferencesEntity: Entity<PreferencesRecord>;

  private readonly repository: ProfileRepository;
  private readonly cache: CacheAside;
  private readonly commits: CommitListener;

  constructor(deps: ProfilesDeps, options: Partial<ProfilesOptions> = {}) {
    const { repository, keys } = deps;
    const { profileTtlSeconds, preferencesTtlSeconds } = { ...PROFILES_DEFAULTS, ...options };
    this.repository = repository;
    this.cache = deps.cache;
    this.commits = deps.commits;
    this.profileEntity = {
      type: "profile",
      ttlSeconds: profileTtlSeconds,
      key: (id) => keys.profile(id),
      encode: encodeProfile,
      decode: sharedDecoder(decodeProfile),
      load: (ids) => repository.getProfiles(ids),
    };
    this.preferencesEntity = {
      type: "preferences",
      ttlSeconds: preferencesTtlSeconds,
      key: (id) => keys.preferences(id),
      encode: encodePreferences,
      decode: sharedDecoder(decodePreferences),
      load: (ids) => repository.getPreferences(ids),
    };
  }

  /** The profile, and its preferences when asked: one cache round trip for both. */
  async getProfile(userId: string, includePreferences: boolean): Promise<ProfileWithPreferences> {
    if (!includePreferences) {
      const profile = await this.readOne(this.profileEntity, userId);
      if (profile.value === null) throw new NotFoundError("profile");
      return { profile };
    }
    const profiles = new Lookup(this.profileEntity, [userId]);
    const preferences = new Lookup(this.preferencesEntity, [userId]);
    await tracedRead(this.cache, [profiles, preferences]);
    const [profile] = profiles.outcomes;
    if (profile!.value === null) throw new NotFoundError("profile");
    return { profile: profile!, preferences: preferences.outcomes[0] };
  }

  /** Outcomes aligned with `userIds`; a null value means no such profile. */
  async batchGetProfiles(userIds: readonly string[]): Promise<Outcome<ProfileRecord>[]> {
    const lookup = new Lookup(this.profileEntity, userIds);
    await tracedRead(this.cache, [lookup]);
    return lookup.outcomes;
  }

  async getPreferences(userId: string): Promise<Outcome<PreferencesRecord>> {
    const preferences = await this.readOne(this.preferencesEntity, userId);
    if (preferences.value === null) throw new NotFoundError("preferences");
    return preferences;
  }

  async updateProfile(userId: string, patch: ProfilePatch, expectedVersion?: number): Promise<ProfileRecord> {
    const { record, event } = await this.repository.upsertProfile(userId, patch, expectedVersion);
    await this.commits.committed(event);
    return record;
  }

  async updatePreferences(
    userId: string,
    patch: PreferencesPatch,
    expectedVersion?: number,
  ): Promise<PreferencesRecord> {
    const { record, event } = await this.repository.upsertPreferences(userId, patch, expectedVersion);
    await this.commits.committed(event);
    return record;
  }

  async deleteProfile(userId: string, expectedVersion?: number): Promise<void> {
    const event = await this.repository.deleteProfile(userId, expectedVersion);
    await this.commits.committed(event);
  }

  private async readOne<T>(entity: Entity<T>, id: string): Promise<Outcome<T>> {
    const lookup = new Lookup(entity, [id]);
    await tracedRead(this.cache, [lookup]);
    return lookup.outcomes[0]!;
  }
}
