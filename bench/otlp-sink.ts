// A stand-in for an OpenTelemetry collector: accepts OTLP/HTTP exports (POST
// /v1/traces), reads each body to the end and discards it, answering 200 with
// an empty ExportTraceServiceResponse, so the traced instance pays the whole
// export (encoding, HTTP, the wait) but nothing is kept.

import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface OtlpSink {
  /** What OTEL_EXPORTER_OTLP_ENDPOINT is set to. */
  readonly endpoint: string;
  /** Export requests and body bytes received so far. */
  readonly received: { requests: number; bytes: number };
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const received = { requests: 0, bytes: 0 };
  const server = http.createServer((req, res) => {
    req.on("data", (chunk: Buffer) => (received.bytes += chunk.length));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") received.requests++;
      // An empty message is a valid ExportTraceServiceResponse (no partial_success).
      res.writeHead(req.method === "POST" ? 200 : 404, { "content-type": "application/x-protobuf" });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
