// Which methods may be retried is the contract's call, not the client's: the
// proto marks them with `option idempotency_level`, and the generated
// descriptors carry that mark. A method added later without it is never
// retried, whatever this file says.

import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";

/** True when the proto declares the method NO_SIDE_EFFECTS or IDEMPOTENT (and it is unary). */
export function isIdempotent(method: DescMethod): boolean {
  return (
    method.methodKind === "unary" &&
    (method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
      method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT)
  );
}

/** The names (as in the proto) of the service's methods that may be retried after UNAVAILABLE. */
export function idempotentMethods(service: DescService): string[] {
  return service.methods.filter(isIdempotent).map((m) => m.name);
}
