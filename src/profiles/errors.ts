// Domain failures. Handlers map them to gRPC codes in one place (server/errors.ts).

export class NotFoundError extends Error {
  constructor(what: string) {
    super(`${what} not found`);
    this.name = "NotFoundError";
  }
}

/** Optimistic concurrency: the caller's etag is not the current one. */
export class EtagMismatchError extends Error {
  constructor(what: string) {
    super(`${what} was changed since the given etag was read; re-read it and retry with the new etag`);
    this.name = "EtagMismatchError";
  }
}
