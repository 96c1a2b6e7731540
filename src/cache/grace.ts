// Serving stale when PostgreSQL is down (CACHE_GRACE_SECONDS): a value past
// its fresh time stays in its key as the grace copy, and a reader that leases
// the key gets the copy with its lease (store/cache-store.ts, graceLease). It
// serves the copy only when its own PostgreSQL read finds the server
// unreachable; a write's DEL voids the copy with the key.

import { parseGraceLease } from "../store/cache-store.js";
import { DatabaseUnavailableError } from "../store/database.js";

/** An answer from a grace copy: the read reports it `stale`. */
export class Stale {
  constructor(readonly value: unknown) {}
}

/**
 * Only an unreachable PostgreSQL (refused, cut, timed out: the adapters'
 * DatabaseUnavailableError) makes a grace copy worth serving. A busy pool or
 * a failing query says nothing about the copy's age being acceptable.
 */
function unreachable(err: unknown): boolean {
  return err instanceof DatabaseUnavailableError;
}

/** The grace copy `reply` carries, when it is a grace lease. */
export function graceCopyOf(reply: string): string | undefined {
  return parseGraceLease(reply)?.copy;
}

/** `loaded`, or, when PostgreSQL cannot be reached, the grace copy (if it decodes) marked Stale. */
export function orGraceCopy(
  loaded: Promise<unknown>,
  copy: string | undefined,
  entity: { decode(raw: string): unknown },
): Promise<unknown> {
  if (copy === undefined) return loaded;
  return loaded.catch((err: unknown) => {
    if (!unreachable(err)) throw err;
    let value: unknown;
    try {
      value = entity.decode(copy);
    } catch {
      throw err;
    }
    return new Stale(value);
  });
}
