// Replies made from the same shared records (profiles/decoded-values.ts) are
// built once, so the gRPC codec encodes each once too (it remembers a
// message's bytes). Held weakly: a reply goes when its records do.

const NONE = {};
const replies = new WeakMap<object, WeakMap<object, unknown>>();

/** The reply `build` makes from `first` and `second`, built once per pair of objects. */
export function replyOf<T>(first: object, second: object | undefined, build: () => T): T {
  let bySecond = replies.get(first);
  if (bySecond === undefined) replies.set(first, (bySecond = new WeakMap()));
  const key = second ?? NONE;
  let reply = bySecond.get(key) as T | undefined;
  if (reply === undefined) bySecond.set(key, (reply = build()));
  return reply;
}
