// The demo user that development mode (an embedded database) starts with, so
// the token and the buf curl line the banner prints work as printed.

import type { Database } from "../store/database.js";
import type { Profiles } from "./profiles.js";
import { ProfileRepository } from "./repository.js";

export const DEMO_USER_ID = "123e4567-e89b-12d3-a456-426614174000";

/** Creates the demo profile on first start; later starts leave it (and any edits to it) alone. */
export async function ensureDemoProfile(app: { profiles: Profiles; stores: { db: Database } }): Promise<void> {
  const existing = await new ProfileRepository(app.stores.db).getProfiles([DEMO_USER_ID]);
  if (existing.size > 0) return;
  await app.profiles.updateProfile(DEMO_USER_ID, {
    firstName: "John",
    lastName: "Doe",
    bio: "Software Engineer",
    avatarUrl: "https://example.com/avatar.jpg",
    phone: "+81-90-1234-5678",
  });
}
