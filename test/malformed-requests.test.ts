// Issue 9, item 3: a request whose message cannot be decoded is answered
// INVALID_ARGUMENT (never INTERNAL), with a message that says what was wrong
// without echoing the payload, and is logged and counted like any other call:
// one RPC log line, grpc_server_started_total and grpc_server_handled_total.
// Each class goes over gRPC (raw HTTP/2 frames, and a grpc-js client for the
// lone surrogates it encodes) and over Connect (raw HTTP/2 requests).

import { create, toBinary, type JsonValue } from "@bufbuild/protobuf";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GetProfileRequestSchema,
  UpdatePreferencesRequestSchema,
  WatchProfileEventsRequestSchema,
} from "../gen/profile/v1/profile_pb.js";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { grpc } from "./support/grpc-client.js";
import { sample, scrape } from "./support/prometheus.js";
import { COMPRESSED, connectGet, connectPost, envelope, grpcCall, gzip, rawRequest } from "./support/raw-http2.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let database: TestDatabase;
let service: ChildService;
let auth: { authorization: string };

beforeAll(async () => {
  database = await createTestDatabase("malformed");
  service = await ChildService.start(
    await serviceEnv({ databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("malformed") }),
  );
  auth = { authorization: `Bearer ${await mintToken(randomUserId())}` };
});
afterAll(async () => {
  await service?.stop("SIGKILL");
  await database?.drop();
});

const SERVICE = "profile.v1.ProfileService";
/** Bytes a payload marker leaves in every body below, so an echo would show. */
const MARKER = "SECRETPAYLOAD";
const marker = Buffer.from(MARKER);

function nested(depth: number, list: boolean): JsonValue {
  let value: JsonValue = MARKER;
  for (let i = 0; i < depth; i++) value = list ? [value] : { [MARKER]: value };
  return value;
}

const getProfile = (userId: string) => toBinary(GetProfileRequestSchema, create(GetProfileRequestSchema, { userId }));
const settings = (value: JsonValue) =>
  toBinary(
    UpdatePreferencesRequestSchema,
    create(UpdatePreferencesRequestSchema, {
      preferences: { settings: value as never },
      updateMask: { paths: ["settings"] },
    }),
  );

interface MessageCase {
  name: string;
  method: "GetProfile" | "UpdatePreferences";
  bytes: Uint8Array;
  says: RegExp;
}

/** Protobuf that a Connect-ES server fails to decode, one per class of the issue. */
const messages: MessageCase[] = [
  {
    name: "truncated protobuf",
    method: "GetProfile",
    bytes: Buffer.concat([Buffer.from([0x0a, 60]), marker]),
    says: /is not a valid profile\.v1\.GetProfileRequest: it is truncated/,
  },
  {
    name: "an illegal tag (field 0)",
    method: "GetProfile",
    bytes: Buffer.concat([Buffer.from([0x00, 0x01]), marker]),
    says: /illegal tag or wire type/,
  },
  {
    name: "a wrong wire type (7)",
    method: "GetProfile",
    bytes: Buffer.concat([Buffer.from([0x0f]), marker]),
    says: /illegal tag or wire type/,
  },
  {
    name: "invalid UTF-8 in a string field",
    method: "GetProfile",
    bytes: Buffer.concat([Buffer.from([0x0a, marker.length + 2]), marker, Buffer.from([0xff, 0xfe])]),
    says: /a string field is not valid UTF-8/,
  },
  {
    name: "a lone surrogate, as CESU-8 (what protobufjs writes)",
    method: "GetProfile",
    bytes: Buffer.concat([Buffer.from([0x0a, marker.length + 3]), marker, Buffer.from([0xed, 0xa0, 0x80])]),
    says: /a string field is not valid UTF-8/,
  },
  {
    name: "a Struct nested 100 levels deep",
    method: "UpdatePreferences",
    bytes: settings(nested(100, false)),
    says: /nests more than 100 levels deep/,
  },
  {
    name: "a ListValue nested 100 levels deep",
    method: "UpdatePreferences",
    bytes: settings({ list: nested(100, true) }),
    says: /nests more than 100 levels deep/,
  },
];

interface Answer {
  code: number | string | undefined;
  message: string;
}

/**
 * Sends one call and checks: the status, the message, no echo of the payload,
 * exactly one more RPC log line with that method and code, and one more
 * grpc_server_started_total and grpc_server_handled_total sample for it.
 */
async function expectRejected(
  method: string,
  send: () => Promise<Answer>,
  expected: { code: number | string; grpcCode: string; says: RegExp },
): Promise<void> {
  const labels = {
    grpc_service: SERVICE,
    grpc_method: method,
    grpc_type: method === "WatchProfileEvents" ? "server_stream" : "unary",
  };
  const rpcLines = () => service.logs.filter((l) => l.msg === "rpc" && l.method === `${SERVICE}/${method}`);
  const linesBefore = rpcLines().length;
  const before = await scrape(service.metricsPort);
  const answer = await send();
  expect(answer.code).toBe(expected.code);
  expect(answer.message).toMatch(expected.says);
  expect(answer.message).not.toContain(MARKER);
  await expect.poll(() => rpcLines().length).toBe(linesBefore + 1);
  expect(rpcLines().at(-1)).toMatchObject({ level: 30, code: expected.grpcCode });
  const after = await scrape(service.metricsPort);
  const delta = (name: string, extra: Record<string, string> = {}) =>
    (sample(after, name, { ...labels, ...extra }) ?? 0) - (sample(before, name, { ...labels, ...extra }) ?? 0);
  expect(delta("grpc_server_started_total")).toBe(1);
  expect(delta("grpc_server_handled_total", { grpc_code: expected.grpcCode })).toBe(1);
  expect(delta("grpc_server_handled_total", { grpc_code: "Internal" })).toBe(0);
}

const invalidGrpc = (says: RegExp) => ({ code: grpc.status.INVALID_ARGUMENT, grpcCode: "InvalidArgument", says });
const invalidConnect = (says: RegExp) => ({ code: "invalid_argument", grpcCode: "InvalidArgument", says });

describe("over gRPC (raw HTTP/2 frames)", () => {
  for (const m of messages) {
    it(`answers ${m.name} with INVALID_ARGUMENT, logged and counted`, async () => {
      await expectRejected(
        m.method,
        () => grpcCall(service.port, `/${SERVICE}/${m.method}`, envelope(m.bytes), auth),
        invalidGrpc(m.says),
      );
    });
  }

  it("answers the compressed flag without grpc-encoding with INVALID_ARGUMENT", async () => {
    await expectRejected(
      "GetProfile",
      () => grpcCall(service.port, `/${SERVICE}/GetProfile`, envelope(getProfile(MARKER), COMPRESSED), auth),
      invalidGrpc(/flagged as compressed, but the request names no grpc-encoding/),
    );
  });

  it("answers truncated gzip with INVALID_ARGUMENT", async () => {
    const gz = gzip(getProfile(MARKER));
    await expectRejected(
      "GetProfile",
      () =>
        grpcCall(service.port, `/${SERVICE}/GetProfile`, envelope(gz.subarray(0, gz.length - 8), COMPRESSED), {
          ...auth,
          "grpc-encoding": "gzip",
        }),
      invalidGrpc(/not valid gzip data/),
    );
  });

  it("answers a malformed request on a server stream (the watch) with INVALID_ARGUMENT", async () => {
    await expectRejected(
      "WatchProfileEvents",
      () =>
        grpcCall(service.port, `/${SERVICE}/WatchProfileEvents`, envelope(Buffer.from([0x0a, 40, ...marker])), auth),
      invalidGrpc(/is not a valid profile\.v1\.WatchProfileEventsRequest: it is truncated/),
    );
  });

  it("authenticates first: a malformed request without a token is UNAUTHENTICATED", async () => {
    await expectRejected(
      "GetProfile",
      () => grpcCall(service.port, `/${SERVICE}/GetProfile`, envelope(messages[0]!.bytes)),
      { code: grpc.status.UNAUTHENTICATED, grpcCode: "Unauthenticated", says: /authorization/ },
    );
  });

  it("answers a lone surrogate sent by a grpc-js client (protobufjs) with INVALID_ARGUMENT", async () => {
    const definition = protoLoader.loadSync("proto/profile/v1/profile.proto", {
      includeDirs: [".", "node_modules/google-proto-files"],
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      profile: { v1: { ProfileService: new (address: string, creds: grpc.ChannelCredentials) => grpc.Client } };
    };
    const client = new pkg.profile.v1.ProfileService(`127.0.0.1:${service.port}`, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set("authorization", auth.authorization);
    try {
      await expectRejected(
        "UpdateProfile",
        () =>
          new Promise<Answer>((resolve) => {
            (client as unknown as Record<string, (...a: unknown[]) => void>).updateProfile!(
              { profile: { firstName: `${MARKER}\ud800` }, updateMask: { paths: ["first_name"] } },
              md,
              { deadline: Date.now() + 10_000 },
              (err: grpc.ServiceError | null) => resolve({ code: err?.code ?? 0, message: err?.details ?? "" }),
            );
          }),
        invalidGrpc(/a string field is not valid UTF-8/),
      );
    } finally {
      client.close();
    }
  });
});

describe("over Connect (raw HTTP/2 requests)", () => {
  for (const m of messages) {
    it(`answers ${m.name} with invalid_argument, logged and counted`, async () => {
      await expectRejected(
        m.method,
        () => connectPost(service.httpPort, `/${SERVICE}/${m.method}`, m.bytes, auth),
        invalidConnect(m.says),
      );
    });
  }

  it("answers the compressed flag without connect-content-encoding (streaming) with invalid_argument", async () => {
    const request = toBinary(WatchProfileEventsRequestSchema, create(WatchProfileEventsRequestSchema, {}));
    await expectRejected(
      "WatchProfileEvents",
      async () => {
        const res = await rawRequest(
          service.httpPort,
          {
            ":method": "POST",
            ":path": `/${SERVICE}/WatchProfileEvents`,
            "content-type": "application/connect+proto",
            "connect-protocol-version": "1",
            ...auth,
          },
          envelope(request, COMPRESSED),
        );
        // The end-of-stream message: flags 0b10, then JSON with the error.
        const end = JSON.parse(res.body.subarray(5).toString()) as { error?: { code: string; message: string } };
        return { code: end.error?.code, message: end.error?.message ?? "" };
      },
      invalidConnect(/flagged as compressed, but the request names no connect-content-encoding/),
    );
  });

  it("answers truncated gzip with invalid_argument", async () => {
    const gz = gzip(getProfile(MARKER));
    await expectRejected(
      "GetProfile",
      () =>
        connectPost(service.httpPort, `/${SERVICE}/GetProfile`, gz.subarray(0, gz.length - 8), {
          ...auth,
          "content-encoding": "gzip",
        }),
      invalidConnect(/not valid gzip data/),
    );
  });

  it("answers bad base64 in a GET with invalid_argument", async () => {
    await expectRejected(
      "GetProfile",
      () =>
        connectGet(
          service.httpPort,
          `/${SERVICE}/GetProfile`,
          `connect=v1&encoding=proto&base64=1&message=${MARKER}%21%21`,
          auth,
        ),
      invalidConnect(/the message query parameter is not valid base64/),
    );
  });

  it("still answers a well-formed GET (base64 and plain JSON)", async () => {
    const b64 = Buffer.from(getProfile(randomUserId())).toString("base64url");
    const owner = await mintToken(randomUserId(), { scope: "profiles:read" });
    const res = await connectGet(
      service.httpPort,
      `/${SERVICE}/GetProfile`,
      `connect=v1&encoding=proto&base64=1&message=${b64}`,
      {
        authorization: `Bearer ${owner}`,
      },
    );
    expect(res.code).toBe("not_found");
    const json = await connectGet(
      service.httpPort,
      `/${SERVICE}/GetProfile`,
      `connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify({ userId: randomUserId() }))}`,
      { authorization: `Bearer ${owner}` },
    );
    expect(json.code).toBe("not_found");
  });
});

describe("the process", () => {
  it("logged none of it as an error, and answered nothing INTERNAL", async () => {
    expect(service.exitCode).toBeUndefined();
    expect(service.logs.filter((l) => (l.level as number) >= 50)).toEqual([]);
    expect(service.output).not.toContain(MARKER);
  });
});
