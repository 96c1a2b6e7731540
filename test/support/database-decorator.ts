import type { Database, QueryOptions, QueryResult, SqlExecutor } from "../../src/store/database.js";

/** A real database passed through untouched: tests extend it and override the calls they watch or hold. */
export class DatabaseDecorator implements Database {
  constructor(protected readonly inner: Database) {}

  query<R>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    return this.inner.query<R>(text, params, options);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.inner.transaction(fn);
  }

  withConnection<T>(fn: (conn: SqlExecutor) => Promise<T>): Promise<T> {
    return this.inner.withConnection(fn);
  }

  probe(): Promise<void> {
    return this.inner.probe();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
