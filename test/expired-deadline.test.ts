// Issue 9, item 1: a request whose deadline has passed (or passes mid-call)
// must never take the process down. The real binary runs as a child process;
// each deadline form is sent on each outcome, over gRPC and Connect, and the
// process must still serve afterwards, with no unhandled rejection counted.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthCheckResponse_ServingStatus as Serving } from "../gen/health/v1/health_pb.js";
import {
  GetProfileRequestSchema,
  ProfileService,
  WatchProfileEventsRequestSchema,
} from "../gen/profile/v1/profile_pb.js";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { genericClient, grpc } from "./support/grpc-client.js";
import { grpcHealthClient } from "./support/grpc-health-client.js";
import { sample, scrape } from "./support/prometheus.js";
import { connectPost, envelope, grpcCall, rawRequest } from "./support/raw-http2.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let database: TestDatabase;
let service: ChildService;

beforeAll(async () => {
  database = await createTestDatabase("expired_deadline");
  service = await ChildService.start(
    await serviceEnv({ databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("expired_deadline") }),
  );
});
afterAll(async () => {
  await service?.stop("SIGKILL");
  await database?.drop();
});

const GET_PROFILE = "/profile.v1.ProfileService/GetProfile";
const WATCH = "/profile.v1.ProfileService/WatchProfileEvents";

interface Outcome {
  name: string;
  path: string;
  message: Uint8Array;
  token: string | undefined;
}

/** One request per outcome the handlers can reach, so each error path meets an expired deadline. */
async function outcomes(): Promise<Outcome[]> {
  const owner = randomUserId();
  const ownerToken = await mintToken(owner);
  // A profile to read, so the OK path is exercised too.
  const created = await connectPost(
    service.httpPort,
    "/profile.v1.ProfileService/UpdateProfile",
    toBinary(
      ProfileService.method.updateProfile.input,
      create(ProfileService.method.updateProfile.input, { profile: { firstName: "Deadline" } }),
    ),
    { authorization: `Bearer ${ownerToken}` },
  );
  expect(created.status).toBe(200);
  const get = (userId: string) => toBinary(GetProfileRequestSchema, create(GetProfileRequestSchema, { userId }));
  return [
    { name: "OK", path: GET_PROFILE, message: get(owner), token: ownerToken },
    {
      name: "NOT_FOUND",
      path: GET_PROFILE,
      message: get(randomUserId()),
      token: await mintToken(randomUserId(), { scope: "profiles:read" }),
    },
    {
      name: "INVALID_ARGUMENT",
      path: GET_PROFILE,
      message: get("not-a-uuid"),
      token: await mintToken(randomUserId(), { scope: "profiles:read" }),
    },
    { name: "PERMISSION_DENIED", path: GET_PROFILE, message: get(owner), token: await mintToken(randomUserId()) },
    { name: "UNAUTHENTICATED", path: GET_PROFILE, message: get(owner), token: undefined },
    {
      name: "watch",
      path: WATCH,
      message: toBinary(WatchProfileEventsRequestSchema, create(WatchProfileEventsRequestSchema, { userIds: [owner] })),
      token: ownerToken,
    },
  ];
}

function auth(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

async function stillServing(): Promise<void> {
  expect(service.exitCode, service.output).toBeUndefined();
  const health = grpcHealthClient(`127.0.0.1:${service.port}`);
  try {
    expect((await health.check("")).status).toBe(Serving.SERVING);
  } finally {
    health.close();
  }
  const text = await scrape(service.metricsPort);
  expect(sample(text, "unhandled_rejections_total")).toBe(0);
  expect(service.logs.filter((l) => l.msg === "unhandled promise rejection; the process keeps running")).toEqual([]);
}

describe("a deadline that has already passed on arrival", () => {
  it("grpc-timeout: 0m answers DEADLINE_EXCEEDED on every path, and the process keeps serving", async () => {
    for (const o of await outcomes()) {
      const res = await grpcCall(service.port, o.path, envelope(o.message), { ...auth(o.token), "grpc-timeout": "0m" });
      expect(res.code, o.name).toBe(grpc.status.DEADLINE_EXCEEDED);
    }
    // The rejections that killed the process surfaced a tick after the answers.
    await new Promise((r) => setTimeout(r, 300));
    await stillServing();
  });

  it("connect-timeout-ms: 0 answers deadline_exceeded on every path, and the process keeps serving", async () => {
    for (const o of await outcomes()) {
      if (o.path === WATCH) {
        // Connect streaming: the error is in the end-of-stream message.
        const res = await rawRequest(
          service.httpPort,
          {
            ":method": "POST",
            ":path": o.path,
            "content-type": "application/connect+proto",
            "connect-protocol-version": "1",
            "connect-timeout-ms": "0",
            ...auth(o.token),
          },
          envelope(o.message),
        );
        const end = JSON.parse(res.body.subarray(5).toString()) as { error?: { code: string } };
        expect(end.error?.code, o.name).toBe("deadline_exceeded");
        continue;
      }
      const res = await connectPost(service.httpPort, o.path, o.message, {
        ...auth(o.token),
        "connect-timeout-ms": "0",
      });
      expect(res.code, o.name).toBe("deadline_exceeded");
    }
    await new Promise((r) => setTimeout(r, 300));
    await stillServing();
  });
});

describe("a 1 ms grpc-js deadline", () => {
  it("on calls that fail (and succeed) leaves the process serving", async () => {
    const client = genericClient(ProfileService, `127.0.0.1:${service.port}`);
    try {
      const list = await outcomes();
      for (let round = 0; round < 10; round++) {
        await Promise.all(
          list
            .filter((o) => o.path === GET_PROFILE)
            .map(
              (o) =>
                new Promise<void>((resolve) => {
                  const md = new grpc.Metadata();
                  if (o.token !== undefined) md.set("authorization", `Bearer ${o.token}`);
                  client.getProfile!.call(
                    client,
                    fromBinary(GetProfileRequestSchema, o.message),
                    md,
                    { deadline: Date.now() + 1 },
                    () => resolve(),
                  );
                }),
            ),
        );
      }
    } finally {
      client.close();
    }
    await new Promise((r) => setTimeout(r, 300));
    await stillServing();
  });
});
