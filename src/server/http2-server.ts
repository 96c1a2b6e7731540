import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

export type Http2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

export interface ListeningServer {
  readonly server: http2.Http2Server;
  readonly port: number;
  /** Stops accepting connections and waits for open ones to finish. */
  close(): Promise<void>;
}

/** Cleartext HTTP/2 (h2c): gRPC, gRPC-Web and Connect clients share the port. */
export async function listen(handler: Http2Handler, port: number, host: string): Promise<ListeningServer> {
  const server = http2.createServer({}, handler);
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
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
