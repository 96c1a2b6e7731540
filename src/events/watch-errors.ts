// Why a watch was refused or ended, in the watch's own terms. The API layer
// (api/errors.ts) gives each its gRPC status; events/ knows no transport.

const REWATCH = "re-read the data you need, then watch again without a resume_token";

/** The token is older than the retention: events it needs may be gone (FAILED_PRECONDITION). */
export class ResumeTokenExpiredError extends Error {
  constructor() {
    super(`resume_token is older than the event retention window, so events may be missing: ${REWATCH}`);
    this.name = "ResumeTokenExpiredError";
  }
}

/** A token of ours that cannot be honoured here either (another log, or ahead of it): FAILED_PRECONDITION. */
export class UnusableResumeTokenError extends Error {
  constructor(why: string) {
    super(`${why}: ${REWATCH}`);
    this.name = "UnusableResumeTokenError";
  }
}

/** The watcher's queue overflowed, too many resumes are waiting, or a stream limit is reached: RESOURCE_EXHAUSTED. */
export class WatchLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WatchLimitError";
  }
}

/** The replica is shutting down: resume elsewhere (UNAVAILABLE). */
export class WatchShutdownError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WatchShutdownError";
  }
}
