// Resume tokens: a position in one event log, bound to that log. A position
// only means something in the database that issued it (a restored dump, or
// another environment, numbers its transactions differently), so a token names
// its event log and carries a MAC under that log's key. Both live in the
// database (Outbox.eventLog), so every replica issues and accepts the same
// tokens without any configuration of its own.
//
// Layout, base64url: "p2" | log id (8 bytes) | xid (u64 BE) | id (u64 BE) | MAC (8 bytes),
// the MAC being HMAC-SHA256 under the log's key over everything before it.

import { createHmac, timingSafeEqual } from "node:crypto";
import type { Position } from "./position.js";

export interface EventLogIdentity {
  /** Random, re-rolled whenever the database turns out to be another one. */
  readonly id: Buffer;
  readonly key: Buffer;
}

export const EVENT_LOG_ID_BYTES = 8;
export const EVENT_LOG_KEY_BYTES = 32;

/** What a client's resume_token turned out to be, when it is a token of ours at all. */
export type ResumePoint =
  | { readonly kind: "ours"; readonly position: Position }
  /** A `p1:` token from before tokens named their log: honoured for one release (see the README). */
  | { readonly kind: "legacy"; readonly position: Position }
  /** Well formed, but from another event log: its position means nothing here. */
  | { readonly kind: "foreign" };

const MAGIC = Buffer.from("p2", "latin1");
const MAC_BYTES = 8;
const SIGNED_BYTES = MAGIC.length + EVENT_LOG_ID_BYTES + 16;
const TOKEN_BYTES = SIGNED_BYTES + MAC_BYTES;
const MAX_TOKEN_CHARS = 128;

export class ResumeTokens {
  // Fan-out hands the same position object to every watcher: encode it once.
  private lastPosition: Position | undefined;
  private lastToken = "";

  constructor(private readonly log: EventLogIdentity) {
    if (log.id.length !== EVENT_LOG_ID_BYTES || log.key.length !== EVENT_LOG_KEY_BYTES) {
      throw new Error("malformed event log identity");
    }
  }

  encode(position: Position): string {
    if (position === this.lastPosition) return this.lastToken;
    const bytes = Buffer.alloc(TOKEN_BYTES);
    MAGIC.copy(bytes, 0);
    this.log.id.copy(bytes, MAGIC.length);
    bytes.writeBigUInt64BE(position.xid, MAGIC.length + EVENT_LOG_ID_BYTES);
    bytes.writeBigUInt64BE(position.id, MAGIC.length + EVENT_LOG_ID_BYTES + 8);
    this.mac(bytes.subarray(0, SIGNED_BYTES)).copy(bytes, SIGNED_BYTES);
    const token = bytes.toString("base64url");
    this.lastPosition = position;
    this.lastToken = token;
    return token;
  }

  /** undefined when the token is not one of ours at all (garbage, or edited by hand). */
  decode(token: string): ResumePoint | undefined {
    if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
    const bytes = Buffer.from(token, "base64url");
    if (bytes.length === TOKEN_BYTES && bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
      // Only the canonical spelling: base64url has several for the last character.
      if (bytes.toString("base64url") !== token) return undefined;
      if (!bytes.subarray(MAGIC.length, MAGIC.length + EVENT_LOG_ID_BYTES).equals(this.log.id)) {
        return { kind: "foreign" };
      }
      if (!timingSafeEqual(this.mac(bytes.subarray(0, SIGNED_BYTES)), bytes.subarray(SIGNED_BYTES))) return undefined;
      const position = positionAt(bytes);
      return position === undefined ? undefined : { kind: "ours", position };
    }
    const legacy = decodeLegacy(bytes);
    return legacy === undefined ? undefined : { kind: "legacy", position: legacy };
  }

  private mac(signed: Buffer): Buffer {
    return createHmac("sha256", this.log.key).update(signed).digest().subarray(0, MAC_BYTES);
  }
}

/**
 * The position a token claims, checked against nothing: for looking at tokens
 * in tests and tools, never for deciding whether to honour one.
 */
export function claimedPosition(token: string): Position | undefined {
  const bytes = Buffer.from(token, "base64url");
  if (bytes.length === TOKEN_BYTES && bytes.subarray(0, MAGIC.length).equals(MAGIC)) return positionAt(bytes);
  return decodeLegacy(bytes);
}

function positionAt(bytes: Buffer): Position | undefined {
  const xid = bytes.readBigUInt64BE(MAGIC.length + EVENT_LOG_ID_BYTES);
  const id = bytes.readBigUInt64BE(MAGIC.length + EVENT_LOG_ID_BYTES + 8);
  // Event ids are a bigserial: a positive bigint.
  return id >= 1n << 63n ? undefined : { xid, id };
}

function decodeLegacy(bytes: Buffer): Position | undefined {
  const match = /^p1:(\d{1,20}):(\d{1,19})$/.exec(bytes.toString("latin1"));
  if (match === null) return undefined;
  const xid = BigInt(match[1]!);
  const id = BigInt(match[2]!);
  if (xid >= 1n << 64n || id >= 1n << 63n) return undefined;
  return { xid, id };
}
