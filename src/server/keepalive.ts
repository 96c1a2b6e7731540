// gRPC keepalive, server side, as grpc-go implements it
// (https://github.com/grpc/grpc/blob/master/doc/keepalive.md):
//
// - Server pings. A connection that has sent us nothing for
//   HTTP2_KEEPALIVE_TIME_SECONDS gets a PING; without an ack within
//   HTTP2_KEEPALIVE_TIMEOUT_SECONDS it is destroyed. This finds peers that
//   vanished behind a NAT or load balancer while a watch stream looked idle,
//   and connections that nghttp2 has already given up on (after it sent
//   GOAWAY for a connection error, it reads nothing more, so no ack arrives).
// - Client pings. A PING sooner than HTTP2_KEEPALIVE_MIN_TIME_SECONDS after
//   the previous one is a strike, unless we sent data in between (that is
//   how grpc-go and gRPC C-core clients time their BDP pings); on a
//   connection with no call, pings are held to two hours unless
//   HTTP2_KEEPALIVE_PERMIT_WITHOUT_CALLS. The third strike gets
//   GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"), which makes gRPC clients
//   back off their keepalive interval, and the connection is closed.
//
// "Sent us nothing" and "we sent data" are read from the socket's byte
// counters, which count the HTTP/2 frames Node writes natively.

import * as http2 from "node:http2";
import type { ServerLimits } from "../config/config.js";
import type { Connection } from "./connection.js";

/** A PING frame, or its ack, on the wire: 9 bytes of frame header and 8 of payload. */
const PING_FRAME_BYTES = 17;
/** A SETTINGS ack, the other control frame we may send unprompted by a call. */
const SETTINGS_ACK_BYTES = 9;
/** grpc-go's maxPingStrikes: GOAWAY on the third bad ping. */
const MAX_PING_STRIKES = 2;
/** grpc-go's defaultPingTimeout, the bound on pings with no call in flight. */
const PINGS_WITHOUT_CALLS_MS = 2 * 60 * 60 * 1000;

export function enforceKeepalive(connection: Connection, limits: ServerLimits): void {
  pingWhenSilent(connection, limits);
  policeClientPings(connection, limits);
}

function pingWhenSilent(connection: Connection, limits: ServerLimits): void {
  const { session, socket } = connection;
  let readAtLastCheck = socket.bytesRead;
  let awaitingAck: NodeJS.Timeout | undefined;
  const interval = setInterval(() => {
    if (awaitingAck !== undefined || connection.closed) return;
    const read = socket.bytesRead;
    if (read !== readAtLastCheck) {
      readAtLastCheck = read;
      return;
    }
    awaitingAck = setTimeout(
      () => connection.destroy("keepalive PING not acknowledged within HTTP2_KEEPALIVE_TIMEOUT_SECONDS"),
      limits.keepaliveTimeoutMs,
    );
    awaitingAck.unref();
    connection.serverPings++;
    try {
      session.ping((err) => {
        clearTimeout(awaitingAck);
        awaitingAck = undefined;
        // The ack itself is not activity: the next silent interval pings again.
        if (err === null) readAtLastCheck = socket.bytesRead;
      });
    } catch {
      // ERR_HTTP2_INVALID_SESSION and the like: the session is gone already.
      connection.destroy("keepalive PING could not be sent");
    }
  }, limits.keepaliveTimeMs);
  interval.unref();
  connection.onClose(() => {
    clearInterval(interval);
    clearTimeout(awaitingAck);
  });
}

function policeClientPings(connection: Connection, limits: ServerLimits): void {
  const { session, socket } = connection;
  let lastPingAt = 0;
  let strikes = 0;
  let writtenAtLastPing = socket.bytesWritten;
  let serverPingsAtLastPing = connection.serverPings;
  session.on("ping", () => {
    const now = Date.now();
    const written = socket.bytesWritten;
    // What we wrote since the previous client ping, beyond its ack and our own pings, is data or headers.
    const controlBytes = PING_FRAME_BYTES * (1 + connection.serverPings - serverPingsAtLastPing) + SETTINGS_ACK_BYTES;
    const sentData = written - writtenAtLastPing > controlBytes;
    const previous = lastPingAt;
    lastPingAt = now;
    writtenAtLastPing = written;
    serverPingsAtLastPing = connection.serverPings;
    if (sentData) {
      strikes = 0;
      return;
    }
    const minInterval =
      connection.openStreams > 0 || limits.keepalivePermitWithoutCalls
        ? limits.keepaliveMinTimeMs
        : PINGS_WITHOUT_CALLS_MS;
    if (now - previous < minInterval) strikes++;
    if (strikes > MAX_PING_STRIKES) connection.terminate(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, "too_many_pings");
  });
}
