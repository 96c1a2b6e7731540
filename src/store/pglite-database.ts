// The embedded default's database: PostgreSQL compiled to WASM (PGlite), so the
// same migrations and SQL run without a server to install.
//
// PGlite is one session. Everything that must not interleave with other work
// (a transaction, a withConnection block) holds that session exclusively, and
// every other call queues behind it, like callers waiting on a pool of one.

import { mkdirSync } from "node:fs";
import { PGlite, types, type Results } from "@electric-sql/pglite";
import { DatabaseUnavailableError, type Database, type QueryResult, type SqlExecutor } from "./database.js";

export class PGliteDatabase implements Database {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(private readonly pg: PGlite) {}

  /** Opens (creating if needed) the database in `dataDir`; without one it lives in memory. */
  static async open(dataDir?: string): Promise<PGliteDatabase> {
    if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
    const pg = await PGlite.create({
      ...(dataDir === undefined ? {} : { dataDir }),
      // pg returns int8 as a string (it may not fit a double); so must we.
      parsers: { [types.INT8]: (value: string) => value },
    });
    return new PGliteDatabase(pg);
  }

  query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    return this.exclusive(() => run<R>(this.pg, text, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      const session = this.session();
      await run(this.pg, "BEGIN");
      try {
        const result = await fn(session.executor);
        await run(this.pg, "COMMIT");
        return result;
      } catch (err) {
        await run(this.pg, "ROLLBACK").catch(() => {});
        throw err;
      } finally {
        session.end();
      }
    });
  }

  withConnection<T>(fn: (conn: SqlExecutor) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      const session = this.session();
      try {
        return await fn(session.executor);
      } finally {
        session.end();
        // A pool would discard a connection left mid-transaction; ours is the only
        // one, so roll back instead of letting the next caller inherit it.
        if (this.pg.isInTransaction()) await run(this.pg, "ROLLBACK").catch(() => {});
      }
    });
  }

  /** PGlite is one in-process session: there is no pool to keep a connection out of. */
  async probe(): Promise<void> {
    await this.query("SELECT 1");
  }

  /** Lets calls already queued finish, refuses new ones, then closes (and flushes to disk). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    await this.pg.close();
  }

  /** Runs `fn` once every earlier caller is done with the session. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new DatabaseUnavailableError(new Error("database closed")));
    const turn = this.tail.then(fn);
    this.tail = turn.catch(() => {});
    return turn;
  }

  /**
   * The executor handed to a transaction or withConnection block. It runs
   * directly on the session the block holds, and refuses calls once the block
   * has ended (they would otherwise run outside the exclusive section).
   */
  private session(): { executor: SqlExecutor; end(): void } {
    let ended = false;
    const pg = this.pg;
    return {
      executor: {
        query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
          if (ended) return Promise.reject(new Error("query on a session that has already been released"));
          return run<R>(pg, text, params);
        },
      },
      end: () => {
        ended = true;
      },
    };
  }
}

/**
 * Like pg: without parameters the text goes through the simple protocol, so
 * a migration may hold several statements (the last result is returned);
 * with parameters it is one prepared statement.
 */
async function run<R>(pg: PGlite, text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
  try {
    if (params === undefined || params.length === 0) {
      const results = await pg.exec(text);
      return toQueryResult<R>(results[results.length - 1]);
    }
    return toQueryResult<R>(await pg.query<R>(text, params as unknown[]));
  } catch (err) {
    throw classify(err);
  }
}

function toQueryResult<R>(result: Results<unknown> | undefined): QueryResult<R> {
  if (result === undefined) return { rows: [], rowCount: 0 };
  const rows = result.rows as R[];
  // pg's rowCount: rows affected by a write, rows returned by a read.
  const rowCount = (result as { rowCount?: number }).rowCount ?? (result.affectedRows || rows.length);
  return { rows, rowCount };
}

function classify(err: unknown): unknown {
  if (err instanceof Error && /PGlite is closed/i.test(err.message)) return new DatabaseUnavailableError(err);
  // PGlite attaches the query's parameters to its errors; they can hold personal data.
  if (err !== null && typeof err === "object" && "params" in err) delete (err as { params?: unknown }).params;
  return err;
}
