// A position in the event log: (xid, id), ordered by xid first. Resume tokens
// (resume-token.ts) are positions bound to the event log they came from.

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
