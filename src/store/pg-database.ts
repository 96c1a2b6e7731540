import { createHash } from "node:crypto";
import pg from "pg";
import {
  DatabaseBusyError,
  DatabaseUnavailableError,
  type Database,
  type QueryOptions,
  type QueryResult,
  type SqlExecutor,
} from "./database.js";

export interface PgDatabaseOptions {
  connectionString: string;
  max: number;
  statementTimeoutMs: number;
  connectionTimeoutMs?: number;
  /**
   * Honour `prepare` with named statements. Off for a pooler that cannot keep
   * them (PgBouncer in transaction mode before 1.21, or without max_prepared_statements).
   */
  preparedStatements?: boolean;
}

export class PgDatabase implements Database {
  private readonly pool: pg.Pool;
  /** One connection for `probe()` alone, outside the pool that requests queue for. */
  private readonly probePool: pg.Pool;
  private readonly statements: StatementNames | undefined;

  constructor(options: PgDatabaseOptions) {
    const common = {
      connectionString: options.connectionString,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 3000,
      statement_timeout: options.statementTimeoutMs,
      query_timeout: options.statementTimeoutMs + 1000,
      idleTimeoutMillis: 30_000,
    };
    this.pool = new pg.Pool({ ...common, max: options.max });
    this.probePool = new pg.Pool({ ...common, max: 1, idleTimeoutMillis: 0 });
    // An idle client that loses its server emits here; without a listener the process would crash.
    this.pool.on("error", () => {});
    this.probePool.on("error", () => {});
    this.statements = options.preparedStatements === false ? undefined : new StatementNames();
  }

  async query<R>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    try {
      const result = await this.pool.query(this.config(text, params, options));
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
    const config = this.config.bind(this);
    try {
      return await fn({
        async query<R>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
          try {
            const result = await client.query(config(text, params, options));
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

  async probe(): Promise<void> {
    try {
      await this.probePool.query("SELECT 1");
    } catch (err) {
      throw classify(err);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.end(), this.probePool.end()]);
  }

  private config(
    text: string,
    params: readonly unknown[] | undefined,
    options: QueryOptions | undefined,
  ): pg.QueryConfig {
    const values = params as unknown[] | undefined;
    if (options?.prepare !== true || this.statements === undefined) return { text, values };
    return { name: this.statements.nameOf(text), text, values };
  }
}

/**
 * pg prepares a named statement once per connection and then only binds it,
 * saving PostgreSQL a parse and a plan per call. Names are derived from the
 * text, so one name never stands for two texts.
 */
class StatementNames {
  // Bounded by the fixed set of texts callers mark `prepare`.
  private readonly names = new Map<string, string>();

  nameOf(text: string): string {
    let name = this.names.get(text);
    if (name === undefined) {
      name = `ps_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
      this.names.set(text, name);
    }
    return name;
  }
}

// SQLSTATE classes that mean "the server is unreachable or shedding load", not "your query is wrong".
const unavailableSqlStates = new Set([
  "57P01",
  "57P02",
  "57P03",
  "53300",
  "08000",
  "08003",
  "08006",
  "08001",
  "08004",
  "57014",
]);

function classify(err: unknown): unknown {
  if (err instanceof DatabaseUnavailableError || err instanceof DatabaseBusyError) return err;
  // pg-pool's wait for a free connection ran out: every connection is busy, which says nothing about the server.
  // (A new connection that cannot be made in time fails differently, below, as unavailable.)
  if (err instanceof Error && err.message === "timeout exceeded when trying to connect") {
    return new DatabaseBusyError(err);
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && unavailableSqlStates.has(code)) return new DatabaseUnavailableError(err);
  if (
    typeof code === "string" &&
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH)$/.test(code)
  ) {
    return new DatabaseUnavailableError(err);
  }
  const message = err instanceof Error ? err.message : "";
  if (/timeout|Connection terminated|not queryable|Client has encountered a connection error/i.test(message)) {
    return new DatabaseUnavailableError(err);
  }
  return err;
}
