import pg from "pg";
import {
  DatabaseUnavailableError,
  type Database,
  type QueryResult,
  type SqlExecutor,
} from "./database.js";

export interface PgDatabaseOptions {
  connectionString: string;
  max: number;
  statementTimeoutMs: number;
  connectionTimeoutMs?: number;
}

export class PgDatabase implements Database {
  private readonly pool: pg.Pool;

  constructor(options: PgDatabaseOptions) {
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.max,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 3000,
      statement_timeout: options.statementTimeoutMs,
      query_timeout: options.statementTimeoutMs + 1000,
      idleTimeoutMillis: 30_000,
    });
    // An idle client that loses its server emits here; without a listener the process would crash.
    this.pool.on("error", () => {});
  }

  async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    try {
      const result = await this.pool.query(text, params as unknown[] | undefined);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    } catch (err) {
      throw classify(err);
    }
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.withConnection(async (conn) => {
      await conn.query("BEGIN");
      try {
        const result = await fn(conn);
        await conn.query("COMMIT");
        return result;
      } catch (err) {
        await conn.query("ROLLBACK").catch(() => {});
        throw err;
      }
    });
  }

  async withConnection<T>(fn: (conn: SqlExecutor) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw classify(err);
    }
    let broken: unknown;
    try {
      return await fn({
        async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
          try {
            const result = await client.query(text, params as unknown[] | undefined);
            return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
          } catch (err) {
            const classified = classify(err);
            if (classified instanceof DatabaseUnavailableError) broken = err;
            throw classified;
          }
        },
      });
    } finally {
      // A connection that failed at the transport level must not go back to the pool.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

// SQLSTATE classes that mean "the server is unreachable or shedding load", not "your query is wrong".
const unavailableSqlStates = new Set(["57P01", "57P02", "57P03", "53300", "08000", "08003", "08006", "08001", "08004", "57014"]);

function classify(err: unknown): unknown {
  if (err instanceof DatabaseUnavailableError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && unavailableSqlStates.has(code)) return new DatabaseUnavailableError(err);
  if (typeof code === "string" && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH)$/.test(code)) {
    return new DatabaseUnavailableError(err);
  }
  const message = err instanceof Error ? err.message : "";
  if (/timeout|Connection terminated|not queryable|Client has encountered a connection error/i.test(message)) {
    return new DatabaseUnavailableError(err);
  }
  return err;
}
