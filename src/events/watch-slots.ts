// Bounds on open WatchProfileEvents streams, per connection and per caller.
// A watch holds a queue, a handler and a stream for as long as the client
// wants (about 70 KiB each), so without a bound one client can take the
// replica's memory: 9,285 watches on one connection took RSS from 189 to
// 896 MB. Past a bound the new watch gets RESOURCE_EXHAUSTED naming it.

import type { WatchLimits } from "../config/config.js";
import { WatchLimitError } from "./watch-errors.js";

export class WatchSlots {
  private readonly byConnection = new WeakMap<object, number>();
  private readonly byCaller = new Map<string, number>();

  constructor(private readonly limits: WatchLimits) {}

  /**
   * Takes one slot for `caller` on `connection` (any object that stands for
   * the connection, such as its HTTP/2 session); the returned function gives
   * it back (once).
   */
  acquire(connection: object | undefined, caller: string): () => void {
    const onConnection = connection === undefined ? 0 : (this.byConnection.get(connection) ?? 0);
    if (onConnection >= this.limits.perConnection) {
      throw new WatchLimitError(
        `at most ${this.limits.perConnection} watch streams may be open on one connection ` +
          `(WATCH_MAX_STREAMS_PER_CONNECTION); close one, or watch several users in one stream`,
      );
    }
    const ofCaller = this.byCaller.get(caller) ?? 0;
    if (ofCaller >= this.limits.perCaller) {
      throw new WatchLimitError(
        `at most ${this.limits.perCaller} watch streams may be open for one caller on this replica ` +
          `(WATCH_MAX_STREAMS_PER_CALLER); close one, or watch several users in one stream`,
      );
    }
    if (connection !== undefined) this.byConnection.set(connection, onConnection + 1);
    this.byCaller.set(caller, ofCaller + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (connection !== undefined) this.byConnection.set(connection, (this.byConnection.get(connection) ?? 1) - 1);
      const left = (this.byCaller.get(caller) ?? 1) - 1;
      if (left === 0) this.byCaller.delete(caller);
      else this.byCaller.set(caller, left);
    };
  }
}
