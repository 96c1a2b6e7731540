// What a reader would be served from a raw cache value, reduced to what the
// consistency checker compares: the row version, or "no such row".
//
// Only `version` is read, not the whole record: the checker must not depend on
// every field of the format (src/profiles/cache-codec.ts), just on the one
// that orders values.

import { ABSENT } from "../store/cache-store.js";

/** Every marker (a lease, ABSENT) starts with this; values are JSON objects. */
const MARKER_START = "~";

export type CachedState = { kind: "value"; version: number } | { kind: "absent" };

/** Undefined when a reader would be served nothing from it: no key, a lease, or a value that does not decode. */
export function cachedState(raw: string | null): CachedState | undefined {
  if (raw === null) return undefined;
  if (raw === ABSENT) return { kind: "absent" };
  if (raw.startsWith(MARKER_START)) return undefined;
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (typeof parsed !== "object" || parsed === null) return undefined;
    const version = (parsed as { version?: unknown }).version;
    return typeof version === "number" && Number.isSafeInteger(version) ? { kind: "value", version } : undefined;
  } catch {
    return undefined;
  }
}
