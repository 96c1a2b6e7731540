// One HTTP/2 connection and how it ends. Every way out ends in the socket
// being destroyed, because Node does not always do it: a graceful close waits
// for a FIN that a hostile peer never sends, and Node 20 leaves the socket
// (and its file descriptor) open for good after nghttp2 ends a connection for
// a protocol error. So each GOAWAY we send is followed, after a short linger,
// by destroying the socket itself; and a connection nghttp2 has given up on
// reads nothing more, so keepalive.ts finds it when its PING gets no ack.

import type * as http2 from "node:http2";
import type { Socket } from "node:net";
import type { Logger } from "../log/logger.js";

/** How long our GOAWAY gets to reach the socket before the session is destroyed. */
const GOAWAY_FLUSH_MS = 25;
/** How long a peer gets to read our GOAWAY and close its side before the socket is destroyed. */
export const GOAWAY_LINGER_MS = 2000;

export class Connection {
  /** Streams open on this connection (HTTP/2 streams, not RPC kinds). */
  openStreams = 0;
  /** When the last stream closed (or the connection opened); meaningful while openStreams is 0. */
  idleSince = Date.now();
  /** PINGs we have sent (keepalive), so that their bytes are not mistaken for data. */
  serverPings = 0;
  private ending = false;
  private readonly cleanups: (() => void)[] = [];

  constructor(
    readonly session: http2.ServerHttp2Session,
    /** The socket under the session; session.socket is a proxy that refuses destroy(). */
    readonly socket: Socket,
    private readonly log: Logger,
  ) {
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      this.openStreams++;
      stream.once("close", () => {
        if (--this.openStreams === 0) this.idleSince = Date.now();
      });
    });
    // Node destroys the session after an 'error'; the listener makes sure the socket goes too
    // (unless we are ending it ourselves, and the GOAWAY we queued is still being written).
    session.on("error", (err: Error) => {
      if (!this.ending) this.destroy(`session error: ${err.message}`);
    });
    // A frame we could not send on the connection itself (stream 0) leaves it unusable.
    session.on("frameError", (type: number, code: number, streamId: number) => {
      if (streamId === 0) this.destroy(`could not send frame type ${type} (code ${code})`);
    });
    session.once("close", () => this.release());
    socket.once("close", () => this.release());
  }

  get closed(): boolean {
    return this.ending || this.session.destroyed || this.socket.destroyed;
  }

  /** Runs `cleanup` when the connection is gone (timers, per-connection accounting). */
  onClose(cleanup: () => void): void {
    if (this.socket.destroyed) cleanup();
    else this.cleanups.push(cleanup);
  }

  /**
   * Graceful: GOAWAY(NO_ERROR), open streams may finish; after `lingerMs`
   * whatever is left is destroyed.
   */
  close(lingerMs: number, why: string): void {
    if (this.ending) return;
    this.ending = true;
    this.log.debug({ reason: why, open_streams: this.openStreams }, "closing connection");
    if (!this.session.closed && !this.session.destroyed) this.session.close();
    this.lingerThenDestroy(lingerMs);
  }

  /**
   * For a peer that broke a limit: GOAWAY with `code` and `reason` as debug
   * data (grpc-go clients act on "too_many_pings"), then the connection is
   * destroyed. Streams still open end with it.
   */
  terminate(code: number, reason: string): void {
    if (this.ending) return;
    this.ending = true;
    this.log.warn({ reason, open_streams: this.openStreams }, "connection terminated");
    if (!this.session.destroyed) {
      if (!this.session.closed) this.session.goaway(code, undefined, Buffer.from(reason));
      // destroy() writes what nghttp2 has queued (our GOAWAY first), then ends the socket.
      // (Without an error, Node would send its own final GOAWAY as NO_ERROR.) Not from inside
      // nghttp2's own callbacks (a stream's close, where rapid-reset.ts decides): the GOAWAY
      // queued there can be lost when the session is destroyed before nghttp2 returns, or
      // before a loaded process has written it: give the write a few milliseconds.
      setTimeout(() => {
        if (!this.session.destroyed) this.session.destroy(new Error(reason), code);
      }, GOAWAY_FLUSH_MS).unref();
    }
    this.lingerThenDestroy(GOAWAY_LINGER_MS);
  }

  /** Immediate, for a connection that is already broken. */
  destroy(why: string): void {
    if (this.socket.destroyed) return;
    this.ending = true;
    this.log.debug({ reason: why }, "connection destroyed");
    if (!this.session.destroyed) this.session.destroy();
    this.socket.destroy();
  }

  private lingerThenDestroy(ms: number): void {
    const timer = setTimeout(() => this.destroy("the peer did not close after GOAWAY"), ms);
    timer.unref();
    this.onClose(() => clearTimeout(timer));
  }

  private release(): void {
    const cleanups = this.cleanups.splice(0);
    for (const cleanup of cleanups) cleanup();
  }
}
