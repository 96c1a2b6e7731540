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
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>>;
}

export interface Database extends SqlExecutor {
  /** Runs `fn` in one transaction: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs `fn` on one dedicated connection (session state such as advisory locks). */
  withConnection<T>(fn: (conn: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** PostgreSQL could not be reached or did not answer in time. Maps to UNAVAILABLE. */
export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super("database unavailable", { cause });
    this.name = "DatabaseUnavailableError";
  }
}
