// Every HTTP/2 session on either port gets the same per-connection bounds:
// connection hygiene (connection.ts), the connection limits, keepalive and
// rapid-reset limiting. Both listeners (http2-server.ts for Connect,
// grpc-listener.ts for grpc-js) compose them through this one place.

import type * as http2 from "node:http2";
import type { AddressInfo, Server, Socket } from "node:net";
import type { ServerLimits } from "../config/config.js";
import type { Logger } from "../log/logger.js";
import { Connection } from "./connection.js";
import { ConnectionLimits } from "./connection-limits.js";
import { enforceKeepalive } from "./keepalive.js";
import { limitStreamResets } from "./rapid-reset.js";

export class GuardedSessions {
  readonly bySession = new WeakMap<http2.Http2Session, Connection>();
  private readonly connections: ConnectionLimits;
  private arriving: Socket | undefined;

  constructor(
    private readonly limits: ServerLimits,
    private readonly log: Logger,
  ) {
    this.connections = new ConnectionLimits(limits);
  }

  /**
   * The socket under the next session. Node creates a session synchronously
   * inside its own listener for the socket, so the one seen just before it is
   * the one underneath.
   */
  arrive(socket: Socket | undefined): void {
    this.arriving = socket;
  }

  /** For the server's "session" event. */
  readonly admit = (session: http2.ServerHttp2Session): void => {
    const socket = this.arriving;
    this.arriving = undefined;
    if (socket === undefined) {
      session.destroy();
      return;
    }
    const connection = new Connection(session, socket, this.log);
    this.bySession.set(session, connection);
    enforceKeepalive(connection, this.limits);
    limitStreamResets(connection, this.limits);
    this.connections.admit(connection);
  };

  /** GOAWAY on every connection; each is destroyed once `graceMs` has passed. */
  closeAll(graceMs: number): void {
    for (const connection of this.connections) connection.close(graceMs, "server shutting down");
  }
}

/** Listens, and resolves with the port once it does (rejects if it cannot). */
export async function listenOn(listener: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(port, host, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  return (listener.address() as AddressInfo).port;
}
