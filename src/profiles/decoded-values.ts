// A cache hit hands back the same JSON string for a key until a write
// replaces it, and decoding it (JSON.parse, dates) and then encoding the
// reply (protobuf-es' reflective toBinary) cost about 15 µs a hit, a twentieth
// of the service's CPU per call. So equal strings decode to one shared,
// frozen record, and replies built from it can be encoded once (api's
// reply-memo, the gRPC codec's WeakMap). Nothing is served from here: the
// key is the value Redis just returned, so this cannot be stale.

import { LRUCache } from "lru-cache";

/** Total characters of cached JSON remembered, least recently used first out. */
const MAX_CHARS = 8 * 1024 * 1024;

export function sharedDecoder<T extends object>(decode: (raw: string) => T): (raw: string) => T {
  const decoded = new LRUCache<string, T>({ maxSize: MAX_CHARS, sizeCalculation: (_, raw) => Math.max(1, raw.length) });
  return (raw) => {
    let value = decoded.get(raw);
    if (value === undefined) {
      value = Object.freeze(decode(raw));
      decoded.set(raw, value);
    }
    return value;
  };
}
