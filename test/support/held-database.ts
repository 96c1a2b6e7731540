import type { QueryOptions, QueryResult } from "../../src/store/database.js";
import { DatabaseDecorator } from "./database-decorator.js";

/**
 * A real database that can hold back the result of a SELECT of one row: the
 * reader has read PostgreSQL and not yet filled the cache, as long as a test
 * wants (the stale-fill race).
 */
export class HeldDatabase extends DatabaseDecorator {
  /** While set, a `SELECT … FROM profiles` of this user id waits for `release` once it has its rows. */
  hold: { userId: string; reached: () => void; release: Promise<void> } | undefined;

  override async query<R>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    const result = await this.inner.query<R>(text, params, options);
    const hold = this.hold;
    if (hold !== undefined && /FROM profiles WHERE/.test(text) && JSON.stringify(params).includes(hold.userId)) {
      hold.reached();
      await hold.release;
    }
    return result;
  }
}
