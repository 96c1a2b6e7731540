// Issue 9, item 6: a request with two authorization headers (or two tokens
// joined into one) is UNAUTHENTICATED. Node's HTTP/2 layer keeps only the
// first of a repeated authorization header, so before this a second token
// was silently ignored. node:http2's client refuses to send such a request,
// so it is written as raw frames.

import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetProfileRequestSchema } from "../gen/profile/v1/profile_pb.js";
import { grpc } from "./support/grpc-client.js";
import { envelope } from "./support/raw-http2.js";
import { lastHeader, sendFrames, type HeaderList } from "./support/raw-frames.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let svc: TestService;
let mine: string;
let theirs: string;

beforeAll(async () => {
  svc = await startTestService({ label: "duplicate_auth" });
  mine = await mintToken(randomUserId());
  theirs = await mintToken(randomUserId(), { scope: "profiles:read profiles:write" });
});
afterAll(async () => {
  await svc?.close();
});

const message = toBinary(GetProfileRequestSchema, create(GetProfileRequestSchema, {}));

function request(port: number, contentType: string, authorization: string[]): HeaderList {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/profile.v1.ProfileService/GetProfile"],
    [":authority", `127.0.0.1:${port}`],
    ["content-type", contentType],
    ["te", "trailers"],
    ...authorization.map((value): [string, string] => ["authorization", value]),
  ];
}

async function grpcCode(authorization: string[]): Promise<number> {
  const res = await sendFrames(svc.port, request(svc.port, "application/grpc", authorization), envelope(message));
  return Number(lastHeader(res, "grpc-status"));
}

async function connectCode(authorization: string[]): Promise<string> {
  const res = await sendFrames(svc.httpPort, request(svc.httpPort, "application/proto", authorization), message);
  if (lastHeader(res, ":status") === "200") return "ok";
  return (JSON.parse(res.data.toString()) as { code: string }).code;
}

describe("authorization headers", () => {
  it("one bearer token is accepted (the caller has no profile yet: NOT_FOUND)", async () => {
    expect(await grpcCode([`Bearer ${mine}`])).toBe(grpc.status.NOT_FOUND);
    expect(await connectCode([`Bearer ${mine}`])).toBe("not_found");
  });

  it("two headers are UNAUTHENTICATED, whichever comes first", async () => {
    expect(await grpcCode([`Bearer ${mine}`, `Bearer ${theirs}`])).toBe(grpc.status.UNAUTHENTICATED);
    expect(await grpcCode([`Bearer ${theirs}`, `Bearer ${mine}`])).toBe(grpc.status.UNAUTHENTICATED);
    expect(await grpcCode([`Bearer ${mine}`, `Bearer ${mine}`])).toBe(grpc.status.UNAUTHENTICATED);
    expect(await connectCode([`Bearer ${mine}`, `Bearer ${theirs}`])).toBe("unauthenticated");
  });

  it("two tokens joined into one header are UNAUTHENTICATED", async () => {
    expect(await grpcCode([`Bearer ${mine}, Bearer ${theirs}`])).toBe(grpc.status.UNAUTHENTICATED);
    expect(await connectCode([`Bearer ${theirs},Bearer ${mine}`])).toBe("unauthenticated");
  });
});
