import type { Database, QueryResult, SqlExecutor } from "../../src/store/database.js";

/** A real database whose queries are also recorded, so tests can count them. */
export class CountingDatabase implements Database {
  readonly queries: string[] = [];

  constructor(private readonly inner: Database) {}

  count(pattern: RegExp): number {
    return this.queries.filter((q) => pattern.test(q)).length;
  }

  reset(): void {
    this.queries.length = 0;
  }

  query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    this.queries.push(text);
    return this.inner.query<R>(text, params);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.inner.transaction((tx) => fn(this.recording(tx)));
  }

  withConnection<T>(fn: (conn: SqlExecutor) => Promise<T>): Promise<T> {
    return this.inner.withConnection((conn) => fn(this.recording(conn)));
  }

  probe(): Promise<void> {
    return this.inner.probe();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private recording(executor: SqlExecutor): SqlExecutor {
    return {
      query: <R>(text: string, params?: readonly unknown[]) => {
        this.queries.push(text);
        return executor.query<R>(text, params);
      },
    };
  }
}
