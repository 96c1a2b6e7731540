/** Who is calling, from a verified token. */
export interface Caller {
  /** The token's `sub`: the caller's user id. */
  readonly subject: string;
  readonly scopes: ReadonlySet<string>;
}

export const Scope = {
  read: "profiles:read",
  write: "profiles:write",
  watch: "profiles:watch",
} as const;
export type Access = keyof typeof Scope;

/** Callers may always act on their own data; anyone else's needs the scope. */
export function mayAccess(caller: Caller, userId: string, access: Access): boolean {
  return caller.subject === userId || caller.scopes.has(Scope[access]);
}
