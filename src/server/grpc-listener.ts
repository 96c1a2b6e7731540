// The gRPC port: grpc-js answers the calls, on a listener we own. grpc-js
// (1.10+) takes connections through Server#createConnectionInjector, so the
// TCP (or TLS) listener is ours, and every bound of the hardened edge applies
// as on the Connect port: connection limits, idle and preface timeouts,
// keepalive enforcement (client ping strikes included, which grpc-js lacks),
// rapid-reset limiting, request-body timeouts, and a socket destroyed after
// every GOAWAY we send or connection error.
//
// Those bounds need the HTTP/2 sessions, which the injector does not expose.
// grpc-js keeps the HTTP/2 server it made for the injector in a private map;
// we take it from there (grpc-js is pinned, and test/grpc-edge.test.ts fails
// loudly if that changes) and listen on it just before grpc-js does.

import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import type { Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { Config, ServerLimits } from "../config/config.js";
import type { Logger } from "../log/logger.js";
import type { GrpcCalls } from "./grpc-calls.js";
import { GuardedSessions, listenOn } from "./guarded-sessions.js";
import type { ListeningServer, TlsFiles } from "./http2-server.js";
import { limitStream } from "./request-limits.js";

export interface GrpcListenOptions {
  tls?: TlsFiles;
  limits: ServerLimits;
  log: Logger;
}

/**
 * grpc-js server options for what grpc-js enforces itself: streams per
 * connection, the message size, connection age (as grpc-go's
 * MaxConnectionAge, so clients behind an L4 balancer spread out again).
 * Keepalive and idleness are ours (keepalive.ts, connection-limits.ts), on
 * both ports alike: grpc-js has no client ping policy.
 */
export function grpcServerOptions(
  limits: ServerLimits,
  readMaxBytes: number,
  connectionAge: Config["connectionAge"],
): grpc.ServerOptions {
  return {
    "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
    "grpc.max_receive_message_length": readMaxBytes,
    ...(connectionAge.maxMs > 0
      ? {
          "grpc.max_connection_age_ms": connectionAge.maxMs,
          "grpc.max_connection_age_grace_ms": connectionAge.graceMs,
        }
      : {}),
    "grpc.enable_channelz": 0,
  };
}

export async function listenGrpc(
  server: grpc.Server,
  calls: GrpcCalls,
  port: number,
  host: string,
  options: GrpcListenOptions,
): Promise<ListeningServer> {
  const { limits, log } = options;
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const h2 = injectedHttp2Server(server);
  h2.updateSettings({
    maxConcurrentStreams: limits.maxConcurrentStreams,
    maxHeaderListSize: limits.maxHeaderListBytes,
  });

  const sessions = new GuardedSessions(limits, log);
  h2.prependListener("session", sessions.admit);
  h2.prependListener("stream", (stream: http2.ServerHttp2Stream, headers, _flags: number, raw: string[]) => {
    limitStream(stream, limits.requestBodyTimeoutMs, calls.onStream(stream, headers, raw));
  });
  // nghttp2 reads on after we decided to end a connection (a rapid-reset flood sends thousands of
  // streams per read): streams that still arrive on it are refused, once grpc-js has taken them.
  h2.on("stream", (stream: http2.ServerHttp2Stream) => {
    if (sessions.bySession.get(stream.session!)?.closed === true && !stream.closed) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    }
  });

  const inject = (socket: Socket) => {
    sessions.arrive(socket);
    injector.injectConnection(socket);
    sessions.arrive(undefined);
  };
  const listener =
    options.tls === undefined
      ? net.createServer(inject)
      : tls.createServer(
          {
            cert: options.tls.cert,
            key: options.tls.key,
            ALPNProtocols: ["h2"],
            handshakeTimeout: limits.prefaceTimeoutMs,
          },
          inject,
        );
  // A socket that errors before its session exists (reset during TLS) has no other listener.
  listener.on("connection", (socket: Socket) => socket.on("error", () => {}));

  const boundPort = await listenOn(listener, port, host);
  return {
    server: h2,
    port: boundPort,
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      sessions.closeAll(graceMs);
      await closed;
      injector.destroy();
    },
  };
}

function injectedHttp2Server(server: grpc.Server): http2.Http2Server {
  const servers = (server as unknown as { http2Servers?: Map<http2.Http2Server, unknown> }).http2Servers;
  const last = servers === undefined ? undefined : [...servers.keys()].at(-1);
  if (last === undefined) throw new Error("@grpc/grpc-js changed: no HTTP/2 server behind the connection injector");
  return last;
}
