// Bounds on connections as such: how many may be open, how long one may sit
// without a stream, and how long a new one has to start speaking HTTP/2.
// Without them, idle or silent connections pile up until the process runs out
// of file descriptors and new clients are locked out.

import * as http2 from "node:http2";
import type { ServerLimits } from "../config/config.js";
import { Connection, GOAWAY_LINGER_MS } from "./connection.js";

export class ConnectionLimits {
  private readonly open = new Set<Connection>();

  constructor(private readonly limits: ServerLimits) {}

  /** Connections not yet gone, including those closing. */
  [Symbol.iterator](): IterableIterator<Connection> {
    return this.open.values();
  }

  /**
   * Takes a new connection in. At MAX_CONNECTIONS the connection that has been
   * idle longest is closed to make room; when none is idle, the new one is
   * refused with GOAWAY(ENHANCE_YOUR_CALM, "too_many_connections").
   */
  admit(connection: Connection): void {
    if (this.live() >= this.limits.maxConnections) {
      const idle = this.longestIdle();
      if (idle === undefined) {
        connection.terminate(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, "too_many_connections");
        return;
      }
      idle.close(GOAWAY_LINGER_MS, "MAX_CONNECTIONS reached: closing the longest idle connection");
    }
    this.open.add(connection);
    connection.onClose(() => this.open.delete(connection));
    this.requirePreface(connection);
    this.closeWhenIdle(connection);
  }

  private live(): number {
    let n = 0;
    for (const c of this.open) if (!c.closed) n++;
    return n;
  }

  private longestIdle(): Connection | undefined {
    let oldest: Connection | undefined;
    for (const c of this.open) {
      if (c.closed || c.openStreams > 0) continue;
      if (oldest === undefined || c.idleSince < oldest.idleSince) oldest = c;
    }
    return oldest;
  }

  /** The client's SETTINGS frame completes its preface; a peer that never sends it holds a descriptor for nothing. */
  private requirePreface(connection: Connection): void {
    const timer = setTimeout(
      () => connection.destroy("no HTTP/2 preface within CONNECTION_PREFACE_TIMEOUT_SECONDS"),
      this.limits.prefaceTimeoutMs,
    );
    timer.unref();
    connection.session.once("remoteSettings", () => clearTimeout(timer));
    connection.onClose(() => clearTimeout(timer));
  }

  /**
   * No stream for CONNECTION_IDLE_TIMEOUT_SECONDS: GOAWAY(NO_ERROR), as
   * grpc-go's MaxConnectionIdle does. The check re-arms itself instead of
   * being reset by every stream, so busy connections cost no timer work.
   */
  private closeWhenIdle(connection: Connection): void {
    const timeout = this.limits.idleTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      if (connection.closed) return;
      const idleFor = connection.openStreams === 0 ? Date.now() - connection.idleSince : 0;
      if (connection.openStreams === 0 && idleFor >= timeout) {
        connection.close(GOAWAY_LINGER_MS, "idle for CONNECTION_IDLE_TIMEOUT_SECONDS");
        return;
      }
      timer = setTimeout(check, connection.openStreams === 0 ? timeout - idleFor : timeout);
      timer.unref();
    };
    timer = setTimeout(check, timeout);
    timer.unref();
    connection.onClose(() => clearTimeout(timer));
  }
}
