// With TLS_CERT_FILE/TLS_KEY_FILE: HTTP/2 over TLS with ALPN, and HTTP/1.1
// clients (Connect and gRPC-Web, as browsers use) on the same port.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { selfSignedCert } from "./support/self-signed-cert.js";

let dir: string;
let cert: Buffer;
let svc: TestService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ps-tls-"));
  const files = selfSignedCert(dir);
  cert = files.cert;
  svc = await startTestService({ label: "tls", tls: { cert, key: files.key } });
});
afterAll(async () => {
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("TLS", () => {
  it("serves grpc-js over HTTP/2 with TLS", async () => {
    const token = await mintToken(randomUserId());
    const res = await svc.grpc.unary("updateProfile", { profile: { firstName: "tls" } }, token);
    expect(res.profile?.firstName).toBe("tls");
  });

  it("serves Connect and gRPC-Web over HTTP/1.1 on the same port", async () => {
    const headers = { authorization: `Bearer ${await mintToken(randomUserId())}` };
    const connect11 = createClient(
      ProfileService,
      createConnectTransport({ baseUrl: svc.baseUrl, httpVersion: "1.1", nodeOptions: { ca: cert } }),
    );
    const web11 = createClient(
      ProfileService,
      createGrpcWebTransport({ baseUrl: svc.baseUrl, httpVersion: "1.1", nodeOptions: { ca: cert } }),
    );
    const created = await connect11.updateProfile({ profile: { firstName: "http1" } }, { headers });
    const read = await web11.getProfile({}, { headers });
    expect(read.profile?.etag).toBe(created.profile?.etag);
    // Another user's id, malformed too: permission is checked first (AIP-211).
    await expect(web11.getProfile({ userId: "bad" }, { headers })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    await expect(
      web11.updateProfile({ profile: { phone: "bad" }, updateMask: { paths: ["phone"] } }, { headers }),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
  });
});
