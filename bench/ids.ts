// Profile ids are a pure function of an index, so the seeder (in SQL) and the
// load generators (in Node) agree on them without shipping a million ids
// around, and hot Zipf ranks land all over the primary-key index as real
// random UUIDs would.

import { createHash } from "node:crypto";

/** The SQL twin of profileId(): must produce the same UUID for the same index. */
export const SQL_PROFILE_ID = (indexExpr: string) => `md5('pb:' || ${indexExpr})::uuid`;

export function profileId(index: number): string {
  const h = createHash("md5").update(`pb:${index}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
