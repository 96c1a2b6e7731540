// The same edge over HTTP/1.1 (TLS with ALPN http/1.1, as browsers' Connect
// and gRPC-Web clients arrive): an oversized request must not poison the
// keep-alive connection, and a body that never comes must not hold it.

import { mkdtempSync, rmSync } from "node:fs";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpc } from "./support/grpc-client.js";
import { within } from "./support/h2-grpc.js";
import { startTestService, type TestService } from "./support/service.js";
import { selfSignedCert } from "./support/self-signed-cert.js";

const CHECK = "/grpc.health.v1.Health/Check";

let dir: string;
let cert: Buffer;
let svc: TestService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ps-http1-"));
  const files = selfSignedCert(dir, "IP:127.0.0.1");
  cert = files.cert;
  svc = await startTestService({
    label: "http1_edge",
    tls: { cert, key: files.key },
    env: { READ_MAX_BYTES: "1024", REQUEST_BODY_TIMEOUT_SECONDS: "1" },
  });
});
afterAll(async () => {
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A gRPC-Web call over HTTP/1.1; `body` undefined declares 100 bytes and sends none. */
function grpcWeb(agent: https.Agent, body: Buffer | undefined): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port: svc.httpPort,
        path: CHECK,
        method: "POST",
        agent,
        headers: {
          "content-type": "application/grpc-web+proto",
          ...(body === undefined ? { "content-length": "100" } : {}),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString("latin1")));
        res.on("end", () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
      },
    );
    req.on("error", reject);
    if (body === undefined) req.flushHeaders();
    else req.end(body);
  });
}

const emptyMessage = () => Buffer.alloc(5);

describe("HTTP/1.1", () => {
  it("answers an oversized request RESOURCE_EXHAUSTED and closes that connection, so the next call is not read as its body", async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: cert });
    try {
      const big = Buffer.alloc(1024 * 1024 + 5);
      big.writeUInt32BE(1024 * 1024, 1);
      const first = await within(5000, "the oversized call", grpcWeb(agent, big));
      expect(first.body).toMatch(trailerStatus(grpc.status.RESOURCE_EXHAUSTED));
      expect(first.headers.connection).toBe("close");
      const next = await within(3000, "the next call", grpcWeb(agent, emptyMessage()));
      expect(next.body).toMatch(trailerStatus(grpc.status.OK));
    } finally {
      agent.destroy();
    }
  });

  it("keeps the connection open after a normal call", async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: cert });
    try {
      const reply = await grpcWeb(agent, emptyMessage());
      expect(reply.body).toMatch(trailerStatus(grpc.status.OK));
      expect(reply.headers.connection).not.toBe("close");
    } finally {
      agent.destroy();
    }
  });

  it("closes a connection whose request body never arrives after REQUEST_BODY_TIMEOUT_SECONDS", async () => {
    const agent = new https.Agent({ keepAlive: false, ca: cert });
    try {
      const started = Date.now();
      const outcome = await within(
        5000,
        "the half-sent request",
        grpcWeb(agent, undefined).then(
          () => "answered",
          (err: NodeJS.ErrnoException) => err.code,
        ),
      );
      expect(outcome).toBe("ECONNRESET");
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    } finally {
      agent.destroy();
    }
  });
});

/** The grpc-status line of a gRPC-Web trailer block in the body. */
function trailerStatus(code: number): RegExp {
  return new RegExp(`grpc-status: ?${code}\\r\\n`);
}
