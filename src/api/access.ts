// Who may do what. Authorization comes before validation (Google AIP-211): a
// caller without permission on another user's data gets PERMISSION_DENIED,
// even when its request is malformed too, so it learns nothing about data it
// may not touch. The target is the user_id as sent (empty means the caller):
// a malformed id that is not the caller's own is still another user's data.

import { Scope, type Access, type Caller } from "../auth/caller.js";
import { Code, RpcError } from "./status.js";

/** Callers may always act on their own data; anyone else's needs the scope. */
export function mayAccess(caller: Caller, userId: string, access: Access): boolean {
  return caller.subject === userId || caller.scopes.has(Scope[access]);
}

/** A watch of the caller's own id alone needs no scope; other users, or everyone (no ids), need profiles:watch. */
export function mayWatch(caller: Caller, userIds: readonly string[]): boolean {
  return caller.scopes.has(Scope.watch) || (userIds.length > 0 && userIds.every((id) => id === caller.subject));
}

/** Throws PERMISSION_DENIED unless the caller may act on `requested` (empty: the caller). */
export function authorizeTarget(caller: Caller, requested: string, access: Access): void {
  if (!mayAccess(caller, requested === "" ? caller.subject : requested, access)) {
    throw permissionDenied(`acting on another user's data needs the ${Scope[access]} scope`);
  }
}

export function authorizeBatch(caller: Caller, userIds: readonly string[]): void {
  if (!userIds.every((id) => mayAccess(caller, id, "read"))) {
    throw permissionDenied(`reading other users' profiles needs the ${Scope.read} scope`);
  }
}

export function authorizeWatch(caller: Caller, userIds: readonly string[]): void {
  if (!mayWatch(caller, userIds)) {
    throw permissionDenied(
      `watching other users, or everyone, needs the ${Scope.watch} scope; set user_ids to your own id`,
    );
  }
}

function permissionDenied(what: string): RpcError {
  return new RpcError(what, Code.PermissionDenied);
}
