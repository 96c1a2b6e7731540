// Key and channel names from the seed. The prefix (empty in production) lets
// tests and co-tenants share one Redis without colliding.

export interface CacheKeys {
  profile(userId: string): string;
  preferences(userId: string): string;
}

export interface Channels {
  readonly profileUpdated: string;
  readonly profileDeleted: string;
  readonly preferencesUpdated: string;
}

export function cacheKeys(prefix: string): CacheKeys {
  return {
    profile: (userId) => `${prefix}profile:${userId}`,
    preferences: (userId) => `${prefix}preferences:${userId}`,
  };
}

export function channels(prefix: string): Channels {
  return {
    profileUpdated: `${prefix}profile:updated`,
    profileDeleted: `${prefix}profile:deleted`,
    preferencesUpdated: `${prefix}preferences:updated`,
  };
}
