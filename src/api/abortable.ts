// A unary handler does not watch its signal. This makes its call answer as
// soon as the signal aborts (UNAVAILABLE at shutdown, DEADLINE_EXCEEDED,
// CANCELLED), with the signal's reason.

/**
 * `call` settles the returned promise, unless `signal` aborts first. Either
 * way `call` keeps its handlers: its rejection is always handled, even when
 * nobody waits for it any more, so it can never become an unhandled rejection.
 */
export function raceSignal<T>(call: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    call.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}

export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new DOMException("the call was aborted", "AbortError");
}
