// A TLS peer whose certificate fails the check, and which sends more behind
// its handshake (here an alert record, as a Redis server or a middlebox may).
// The client's socket then emits two errors; ioredis listens for the first
// only, and the second crashed the process. The service must stay up and
// answer from PostgreSQL, whether Redis is one node or a cluster.

import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { grpcProfileClient } from "./support/grpc-client.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { selfSignedCert } from "./support/self-signed-cert.js";

// A fatal alert record (decode_error), written in the same segment as the server's first flight.
const ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);

let dir: string;
let tlsServer: TlsServer;
let peer: Server;
let peerPort: number;
let database: TestDatabase;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ps-tls-alert-"));
  const { cert, key } = selfSignedCert(dir, null);
  tlsServer = createTlsServer({ cert, key });
  tlsServer.on("tlsClientError", () => {});
  tlsServer.listen(0, "127.0.0.1");
  await once(tlsServer, "listening");
  const tlsPort = (tlsServer.address() as { port: number }).port;
  peer = createServer((client) => {
    const upstream = connect(tlsPort, "127.0.0.1");
    let first = true;
    for (const s of [client, upstream]) s.on("error", () => {});
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      client.write(first ? Buffer.concat([chunk, ALERT]) : chunk);
      first = false;
    });
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
  });
  peer.listen(0, "127.0.0.1");
  await once(peer, "listening");
  peerPort = (peer.address() as { port: number }).port;
  database = await createTestDatabase("tls_second_error");
});
afterAll(async () => {
  peer?.close();
  tlsServer?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe.each([
  ["a single node", "false"],
  ["a cluster", "true"],
])("rediss:// to %s whose certificate fails the check", (_name, cluster) => {
  it("keeps the process up, reconnecting, and answers from PostgreSQL", async () => {
    const service = await ChildService.start(
      await serviceEnv(
        {
          databaseUrl: database.url,
          keyPrefix: uniqueKeyPrefix("tls_second_error"),
          redisUrl: `rediss://127.0.0.1:${peerPort}`,
        },
        {
          REDIS_CLUSTER: cluster,
          REDIS_TIMEOUT_MS: "50",
        },
      ),
    );
    const client = grpcProfileClient(`127.0.0.1:${service.port}`);
    try {
      const token = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
      const id = randomUserId();
      await client.unary("updateProfile", { userId: id, profile: { firstName: "still up" } }, token);
      // Every reconnect (tens a second) meets the same peer.
      await new Promise((r) => setTimeout(r, 1500));
      expect((await client.unary("getProfile", { userId: id }, token)).profile?.firstName).toBe("still up");
      expect(service.exitCode).toBeUndefined();
      expect(service.output).not.toContain("Uncaught");
    } finally {
      client.close();
      await service.stop();
    }
  });
});
