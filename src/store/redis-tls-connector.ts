// ioredis' standalone connector for TLS, with one difference. A TLS socket can
// emit a second 'error' after the first: a certificate that fails the check,
// then whatever the server sent behind it. ioredis listens with `once`, so the
// second error has no listener and crashes the process (redis/ioredis#961,
// #1183). Here a listener stays for the socket's whole life; the first error
// still reaches ioredis, which reconnects as usual.

import { connect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { AbstractConnector, type RedisOptions } from "ioredis";

export class TlsConnector extends AbstractConnector {
  private readonly options: RedisOptions;

  // ioredis hands a connector the client's options (typed `unknown` there).
  constructor(options: unknown) {
    const redisOptions = options as RedisOptions;
    super(redisOptions.disconnectTimeout ?? 2000);
    this.options = redisOptions;
  }

  connect(): Promise<TLSSocket> {
    this.connecting = true;
    const { host, port, family } = this.options;
    const tls: ConnectionOptions = typeof this.options.tls === "object" ? this.options.tls : {};
    // Like ioredis: the socket is made on the next tick, unless disconnect() came first.
    return new Promise((resolve, reject) => {
      process.nextTick(() => {
        if (!this.connecting) {
          reject(new Error("Connection is closed."));
          return;
        }
        let socket: TLSSocket;
        try {
          // `family` (IPv4 or IPv6) goes on to the TCP connect, as in ioredis.
          const options: ConnectionOptions & { family?: number } = { host, port, family, ...tls };
          socket = connect(options);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        socket.on("error", () => {});
        socket.once("error", (err: Error) => {
          this.firstError = err;
        });
        this.stream = socket;
        resolve(socket);
      });
    });
  }
}
