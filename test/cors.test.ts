// CORS for browser clients, over TLS as browsers connect (HTTP/1.1 and h2):
// the preflight a browser sends before a cross-origin Connect or gRPC-Web
// call, then the call itself, for an allowed and a disallowed origin.

import { mkdtempSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { selfSignedCert } from "./support/self-signed-cert.js";

const APP = "https://app.example.com";
const OTHER = "https://evil.example.net";
const PATH = "/profile.v1.ProfileService/GetProfile";

let dir: string;
let cert: Buffer;
let svc: TestService;
let plain: TestService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ps-cors-"));
  const files = selfSignedCert(dir);
  cert = files.cert;
  svc = await startTestService({
    label: "cors",
    tls: { cert, key: files.key },
    env: { CORS_ALLOWED_ORIGINS: `${APP}, https://admin.example.com:8443` },
  });
  plain = await startTestService({ label: "cors_off", database: svc.database, keyPrefix: svc.keyPrefix });
});
afterAll(async () => {
  await plain?.close();
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** A request over HTTP/1.1 with TLS, as a browser on another origin sends it. */
function http1(method: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: "127.0.0.1", port: svc.httpPort, path: PATH, method, headers, ca: cert, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The same over h2 with TLS. */
async function h2(port: number, headers: Record<string, string>, secure = true): Promise<Answer> {
  const session = http2.connect(`${secure ? "https" : "http"}://127.0.0.1:${port}`, secure ? { ca: cert } : {});
  try {
    return await new Promise<Answer>((resolve, reject) => {
      const req = session.request({ ":path": PATH, ...headers });
      req.on("response", (h) => {
        req.resume();
        resolve({ status: Number(h[":status"]), headers: h });
      });
      req.on("error", reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

const preflight = (origin: string) => ({
  origin,
  "access-control-request-method": "POST",
  "access-control-request-headers": "authorization,content-type,connect-protocol-version",
});

const list = (value: string | string[] | undefined) =>
  String(value ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase());

describe("CORS", () => {
  it("answers an allowed origin's preflight, over HTTP/1.1 and h2, with the Connect and gRPC-Web headers", async () => {
    for (const answer of [
      await http1("OPTIONS", preflight(APP)),
      await h2(svc.httpPort, { ":method": "OPTIONS", ...preflight(APP) }),
    ]) {
      expect(answer.status).toBe(204);
      expect(answer.headers["access-control-allow-origin"]).toBe(APP);
      expect(list(answer.headers["access-control-allow-methods"])).toEqual(expect.arrayContaining(["post", "get"]));
      expect(list(answer.headers["access-control-allow-headers"])).toEqual(
        expect.arrayContaining([
          "authorization",
          "content-type",
          "connect-protocol-version",
          "x-grpc-web",
          "grpc-timeout",
        ]),
      );
      expect(Number(answer.headers["access-control-max-age"])).toBeGreaterThan(0);
      expect(list(answer.headers.vary)).toContain("origin");
    }
    // An origin is scheme, host and port: the listed port matters.
    expect((await http1("OPTIONS", preflight("https://admin.example.com:8443"))).status).toBe(204);
    expect((await http1("OPTIONS", preflight("https://admin.example.com"))).status).toBe(403);
  });

  it("refuses a preflight from an origin not in CORS_ALLOWED_ORIGINS, with no CORS headers", async () => {
    const answer = await http1("OPTIONS", preflight(OTHER));
    expect(answer.status).toBe(403);
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
    expect(answer.headers["access-control-allow-headers"]).toBeUndefined();
  });

  it("lets an allowed origin's real calls through, Connect and gRPC-Web, exposing the status headers", async () => {
    const user = randomUserId();
    const token = await mintToken(user);
    const seen: Headers[] = [];
    const options = {
      headers: { authorization: `Bearer ${token}`, origin: APP },
      onHeader: (h: Headers) => seen.push(h),
    };
    const connect = createClient(
      ProfileService,
      createConnectTransport({ baseUrl: svc.baseUrl, httpVersion: "1.1", nodeOptions: { ca: cert } }),
    );
    const web = createClient(
      ProfileService,
      createGrpcWebTransport({ baseUrl: svc.baseUrl, httpVersion: "1.1", nodeOptions: { ca: cert } }),
    );
    const created = await connect.updateProfile({ profile: { firstName: "Cors" } }, options);
    const read = await web.getProfile({}, options);
    expect(read.profile?.etag).toBe(created.profile?.etag);
    expect(seen).toHaveLength(2);
    for (const h of seen) {
      expect(h.get("access-control-allow-origin")).toBe(APP);
      expect(list(h.get("access-control-expose-headers") ?? "")).toEqual(
        expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin"]),
      );
    }
  });

  it("gives a disallowed origin's call no CORS headers, so the browser keeps the answer from the page", async () => {
    const seen: Headers[] = [];
    const web = createClient(
      ProfileService,
      createGrpcWebTransport({ baseUrl: svc.baseUrl, httpVersion: "1.1", nodeOptions: { ca: cert } }),
    );
    // The service still answers (only the browser enforces CORS), but without the headers that would let a page read it.
    await web.updateProfile(
      { profile: { firstName: "Other" } },
      {
        headers: { authorization: `Bearer ${await mintToken(randomUserId())}`, origin: OTHER },
        onHeader: (h) => seen.push(h),
      },
    );
    expect(seen).toHaveLength(1);
    expect(seen[0]?.get("access-control-allow-origin")).toBeNull();
    expect(list(seen[0]?.get("vary") ?? "")).toContain("origin");
  });

  it("adds nothing when CORS_ALLOWED_ORIGINS is empty (the default)", async () => {
    const answer = await h2(plain.port, { ":method": "OPTIONS", ...preflight(APP) }, false);
    expect(answer.status).not.toBe(204);
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
  });
});
