// The signal of the HTTP/2 stream (or HTTP/1.1 exchange) that carries a call.
// It aborts when that stream closes: with no reason when the exchange
// completed, with CANCELLED when the client reset it or the connection
// closed, with UNAVAILABLE or RESOURCE_EXHAUSTED when we reset it ourselves.
// A call's own signal also aborts when Connect-ES is done with it, which is
// before its last bytes are on the wire; this one tells whether they got there.

import { createContextKey } from "@connectrpc/connect";

export const transportSignalKey = createContextKey<AbortSignal | undefined>(undefined, {
  description: "the transport stream's signal",
});
