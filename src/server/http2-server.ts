import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { Socket } from "node:net";
import type { ServerLimits } from "../config/config.js";
import type { Logger } from "../log/logger.js";
import { Connection } from "./connection.js";
import { withCors } from "./cors.js";
import { GuardedSessions, listenOn } from "./guarded-sessions.js";
import { limitRequests, type RequestHandler } from "./request-limits.js";

export type Http2Handler = RequestHandler;

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

export interface ListenOptions {
  tls?: TlsFiles;
  limits: ServerLimits;
  /** CORS_ALLOWED_ORIGINS; empty answers no cross-origin request. */
  corsAllowedOrigins: readonly string[];
  /** Without TLS, also answer HTTP/1.1 on the same port (told apart by the HTTP/2 preface). */
  http1?: boolean;
  log: Logger;
}

export interface ListeningServer {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  readonly port: number;
  /**
   * Stops accepting connections, sends GOAWAY so clients open no new streams
   * here, and waits for in-flight streams to finish; after `graceMs` the
   * remaining connections are destroyed.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * nghttp2 goes on reading the rest of a buffer after we decided to end the
 * connection (a rapid-reset flood sends thousands of streams per read), so
 * streams that still arrive on it are refused before any handler runs.
 */
function refuseOnEndingConnections(
  handler: Http2Handler,
  bySession: WeakMap<http2.Http2Session, Connection>,
): Http2Handler {
  return (req, res) => {
    // HTTP/1.1 requests (TLS with allowHTTP1) have no stream and no session.
    const session = (req as Partial<http2.Http2ServerRequest>).stream?.session;
    if (session !== undefined && bySession.get(session)?.closed === true) {
      req.stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    handler(req, res);
  };
}

/**
 * Without TLS: cleartext HTTP/2 only (h2c), where gRPC, gRPC-Web and Connect
 * clients share the port. With TLS: ALPN offers h2 and http/1.1, so browsers'
 * Connect and gRPC-Web clients work on the same port too.
 *
 * Each mechanism that bounds what a client can hold lives in its own file
 * and is composed here: connection hygiene (connection.ts), connection limits,
 * keepalive, rapid-reset limiting, request limits and CORS.
 */
export async function listen(
  handler: Http2Handler,
  port: number,
  host: string,
  options: ListenOptions,
): Promise<ListeningServer> {
  const { tls, limits, log } = options;
  const sessions = new GuardedSessions(limits, log);
  const handle = withCors(
    refuseOnEndingConnections(limitRequests(handler, limits.requestBodyTimeoutMs), sessions.bySession),
    options.corsAllowedOrigins,
  );
  const sessionOptions: http2.ServerOptions = {
    settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListBytes },
    // nghttp2's own rapid-reset limit, as a backstop to ours (see rapid-reset.ts).
    streamResetBurst: limits.streamResetBurst * 2,
    streamResetRate: limits.streamResetRate * 2,
    // A TLS client that negotiates neither h2 nor http/1.1.
    unknownProtocolTimeout: limits.prefaceTimeoutMs,
  };
  const server =
    tls === undefined
      ? http2.createServer(sessionOptions, handle)
      : http2.createSecureServer(
          {
            ...sessionOptions,
            cert: tls.cert,
            key: tls.key,
            allowHTTP1: true,
            handshakeTimeout: limits.prefaceTimeoutMs,
          },
          handle,
        );

  server.prependListener(tls === undefined ? "connection" : "secureConnection", (socket: Socket) =>
    sessions.arrive(socket),
  );
  server.on("session", sessions.admit);

  const h1 = tls === undefined && options.http1 === true ? http1Server(handle, limits) : undefined;
  const listener = h1 === undefined ? server : sniffingListener(server, h1, limits);
  const boundPort = await listenOn(listener, port, host);
  return {
    server,
    port: boundPort,
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      sessions.closeAll(graceMs);
      if (h1 !== undefined) {
        h1.closeIdleConnections();
        setTimeout(() => h1.closeAllConnections(), graceMs).unref();
      }
      await closed;
    },
  };
}

/** HTTP/1.1 for curl and browsers without TLS; its own timeouts bound slow clients. */
function http1Server(handle: Http2Handler, limits: ServerLimits): http.Server {
  const server = http.createServer(handle as unknown as http.RequestListener);
  server.headersTimeout = limits.prefaceTimeoutMs;
  server.requestTimeout = limits.requestBodyTimeoutMs;
  server.keepAliveTimeout = 5000;
  return server;
}

/**
 * One cleartext port for HTTP/2 (prior knowledge, as gRPC and buf curl
 * speak it) and HTTP/1.1: the first bytes tell them apart, since every
 * HTTP/2 connection starts with "PRI * HTTP/2.0". The bytes read to decide
 * go back into the socket; Node's HTTP/2 session reads what is already
 * buffered when it starts.
 */
function sniffingListener(h2: http2.Http2Server, h1: http.Server, limits: ServerLimits): net.Server {
  return net.createServer((socket) => {
    socket.on("error", () => {});
    const timer = setTimeout(() => socket.destroy(), limits.prefaceTimeoutMs);
    timer.unref();
    socket.once("data", (chunk: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      socket.unshift(chunk);
      if (chunk.toString("latin1", 0, 4) === "PRI ") {
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    });
    socket.once("close", () => clearTimeout(timer));
  });
}
