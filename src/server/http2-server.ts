import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

export type Http2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

export interface ListeningServer {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  readonly port: number;
  /**
   * Stops accepting connections, sends GOAWAY so clients open no new streams
   * here, and waits for in-flight streams to finish; after `graceMs` the
   * remaining sessions are destroyed.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Without TLS: cleartext HTTP/2 only (h2c), where gRPC, gRPC-Web and Connect
 * clients share the port. With TLS: ALPN offers h2 and http/1.1, so browsers'
 * Connect and gRPC-Web clients work on the same port too.
 */
export async function listen(handler: Http2Handler, port: number, host: string, tls?: TlsFiles): Promise<ListeningServer> {
  const server =
    tls === undefined
      ? http2.createServer({}, handler)
      : http2.createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: true }, handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      const timer = setTimeout(() => {
        for (const session of sessions) session.destroy();
      }, graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
