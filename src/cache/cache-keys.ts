// Key names from the seed (the channels are in events/channels.ts). The prefix (empty in production) lets
// tests and co-tenants share one Redis without colliding.

export interface CacheKeys {
  profile(userId: string): string;
  preferences(userId: string): string;
}

export function cacheKeys(prefix: string): CacheKeys {
  return {
    profile: (userId) => `${prefix}profile:${userId}`,
    preferences: (userId) => `${prefix}preferences:${userId}`,
  };
}
