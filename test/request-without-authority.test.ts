// Found while auditing the request path for issue 9, item 1: with TLS, the
// port also speaks HTTP/1.1, and an HTTP/1.0 request without a Host header
// (or with a Host that is not a valid authority) made connect-node throw
// synchronously inside the request handler: an uncaught exception that took
// the process down, no token needed. Such a request now gets 400.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../gen/health/v1/health_pb.js";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { selfSignedCert } from "./support/self-signed-cert.js";

let dir: string;
let database: TestDatabase;
let service: ChildService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ps-authority-"));
  const files = selfSignedCert(dir, "IP:127.0.0.1");
  database = await createTestDatabase("authority");
  service = await ChildService.start(
    await serviceEnv(
      { databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("authority") },
      {
        TLS_CERT_FILE: files.certFile,
        TLS_KEY_FILE: files.keyFile,
      },
    ),
  );
});
afterAll(async () => {
  await service?.stop("SIGKILL");
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `request` as is over TLS with ALPN http/1.1 and returns the status line. */
function http1(request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port: service.httpPort, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] },
      () => socket.write(request),
    );
    let out = "";
    const done = () => {
      socket.destroy();
      resolve(out.split("\r\n")[0] ?? "");
    };
    socket.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\r\n")) done();
    });
    socket.on("error", done);
    socket.on("close", done);
  });
}

const body = "content-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

describe("an HTTP/1.x request with no usable authority", () => {
  it("gets 400, and the process keeps serving", async () => {
    expect(await http1(`POST /profile.v1.ProfileService/GetProfile HTTP/1.0\r\n${body}`)).toBe(
      "HTTP/1.1 400 Bad Request",
    );
    expect(await http1(`POST /profile.v1.ProfileService/GetProfile HTTP/1.1\r\nhost: a b\r\n${body}`)).toBe(
      "HTTP/1.1 400 Bad Request",
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(service.exitCode, service.output).toBeUndefined();
    const health = createClient(
      Health,
      createGrpcTransport({
        baseUrl: `https://127.0.0.1:${service.port}`,
        nodeOptions: { ca: readFileSync(join(dir, "cert.pem")) },
      }),
    );
    expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
  });
});
