// The Prometheus endpoint: GET /metrics on its own port, so scrapes never
// share the gRPC listener (or its HTTP/2-only rule) and need no token.

import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A registry, or anything that renders one (the cluster primary's aggregate of its workers). */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export async function listenMetrics(registry: MetricsSource, port: number, host: string): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n"),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Scrapers keep connections alive; they must not hold shutdown open.
        server.closeIdleConnections();
      }),
  };
}
