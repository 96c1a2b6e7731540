// The seam between domain code and PostgreSQL. A pg Pool implements it for
// production; PGlite implements it for the embedded default.

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface QueryOptions {
  /**
   * A hot statement from a small, fixed set of texts: an adapter may keep it
   * prepared on each connection, so later calls skip parsing and planning.
   */
  prepare?: boolean;
}

export interface SqlExecutor {
  query<R = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>>;
}

export interface Database extends SqlExecutor {
  /** Runs `fn` in one transaction: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs `fn` on one dedicated connection (session state such as advisory locks). */
  withConnection<T>(fn: (conn: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Resolves when the server answers a trivial query. It runs on a connection
   * of its own where there is a pool, so a busy pool never looks like a down
   * database, and health checks never take a connection from a request.
   */
  probe(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Every connection stayed busy for as long as a call may wait for one: the
 * service is overloaded, PostgreSQL is not down. Maps to RESOURCE_EXHAUSTED.
 */
export class DatabaseBusyError extends Error {
  constructor(cause: unknown) {
    // Safe to show to clients (errors.ts passes it on): it names no internals.
    super("every database connection is busy; retry with backoff", { cause });
    this.name = "DatabaseBusyError";
  }
}

/** PostgreSQL could not be reached or did not answer in time. Maps to UNAVAILABLE. */
export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super("database unavailable", { cause });
    this.name = "DatabaseUnavailableError";
  }
}
