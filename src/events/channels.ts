// The seed's pub/sub channels. The prefix (empty in production) lets tests
// and co-tenants share one Redis without colliding.

export interface Channels {
  readonly profileUpdated: string;
  readonly profileDeleted: string;
  readonly preferencesUpdated: string;
}

export function channels(prefix: string): Channels {
  return {
    profileUpdated: `${prefix}profile:updated`,
    profileDeleted: `${prefix}profile:deleted`,
    preferencesUpdated: `${prefix}preferences:updated`,
  };
}
