// A position in the event log: (xid, id), ordered by xid first. Resume tokens
// are positions in an opaque, versioned wrapper.

export interface Position {
  readonly xid: bigint;
  readonly id: bigint;
}

export function comparePositions(a: Position, b: Position): number {
  if (a.xid !== b.xid) return a.xid < b.xid ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}

export function maxPosition(a: Position, b: Position): Position {
  return comparePositions(a, b) >= 0 ? a : b;
}

const TOKEN_VERSION = "p1";

export function encodeResumeToken(p: Position): string {
  return Buffer.from(`${TOKEN_VERSION}:${p.xid}:${p.id}`).toString("base64url");
}

/** The position in a resume token, or undefined when it is not one of ours. */
export function decodeResumeToken(token: string): Position | undefined {
  if (token.length > 128 || !/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  const match = /^p1:(\d{1,20}):(\d{1,19})$/.exec(Buffer.from(token, "base64url").toString("latin1"));
  if (match === null) return undefined;
  const xid = BigInt(match[1]!);
  const id = BigInt(match[2]!);
  if (xid >= 1n << 64n || id >= 1n << 63n) return undefined;
  return { xid, id };
}
