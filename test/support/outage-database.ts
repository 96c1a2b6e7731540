import { DatabaseUnavailableError, type QueryOptions, type QueryResult } from "../../src/store/database.js";
import { DatabaseDecorator } from "./database-decorator.js";

/**
 * A real database that can play unreachable (every query fails as the pg
 * adapter reports a refused connection) and can hold a SELECT of one
 * profile before it runs: a reader has leased the key and not yet asked
 * PostgreSQL, as long as a test wants.
 */
export class OutageDatabase extends DatabaseDecorator {
  down = false;
  /** While set, a `SELECT … FROM profiles` of this user id waits for `release` before it runs. */
  hold: { userId: string; reached: () => void; release: Promise<void> } | undefined;

  override async query<R>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    const hold = this.hold;
    if (hold !== undefined && /FROM profiles WHERE/.test(text) && JSON.stringify(params).includes(hold.userId)) {
      hold.reached();
      await hold.release;
    }
    if (this.down) throw new DatabaseUnavailableError(new Error("connect ECONNREFUSED (simulated outage)"));
    return this.inner.query<R>(text, params, options);
  }
}
