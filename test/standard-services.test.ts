// Health checking and server reflection on the service's own port, without a
// token: the real buf curl lists and calls services with no local schema, and
// grpc-js speaks grpc.health.v1 as probes do.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import { HealthCheckResponse_ServingStatus as Status } from "../gen/health/v1/health_pb.js";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { LIVENESS } from "../src/server/health.js";
import { fileRegistryOf, Reflection } from "../src/server/reflection.js";
import { grpcHealthClient, type GrpcHealthClient } from "./support/grpc-health-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

const run = promisify(execFile);

let svc: TestService;
let health: GrpcHealthClient;

beforeAll(async () => {
  svc = await startTestService({ label: "standard_services" });
  health = grpcHealthClient(`127.0.0.1:${svc.port}`);
});
afterAll(async () => {
  health?.close();
  await svc?.close();
});

/** `npx buf curl` over gRPC with prior-knowledge HTTP/2, as the README runs it; no --schema. */
async function bufCurl(args: string[]): Promise<string> {
  const { stdout } = await run("npx", ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
    timeout: 20_000,
  });
  return stdout;
}

describe("buf curl through server reflection", () => {
  it("lists every service, calls ProfileService with a token, and checks health, with no local schema", async () => {
    const me = randomUserId();
    const token = await mintToken(me);
    await svc.grpc.unary("updateProfile", { profile: { firstName: "Reflected", lastName: "Call" } }, token);

    const base = `http://127.0.0.1:${svc.port}`;
    const [services, profile, check] = await Promise.all([
      bufCurl(["--list-services", base]),
      bufCurl([
        "-H",
        `authorization: Bearer ${token}`,
        "-d",
        '{"include_preferences": false}',
        `${base}/profile.v1.ProfileService/GetProfile`,
      ]),
      bufCurl(["-d", "{}", `${base}/grpc.health.v1.Health/Check`]),
    ]);

    expect(services.trim().split("\n").sort()).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "profile.v1.ProfileService",
    ]);
    expect(JSON.parse(profile)).toMatchObject({ profile: { userId: me, firstName: "Reflected", lastName: "Call" } });
    expect(JSON.parse(check)).toEqual({ status: "SERVING" });
  });
});

describe("reflection on the gRPC port, from an outside client", () => {
  // Python grpcio, as grpcurl-style tools call it: v1 and v1alpha, list and file_containing_symbol.
  const python = "/usr/bin/python3";
  it("answers Python grpcio over v1 and v1alpha", async (ctx) => {
    try {
      await run(python, ["-c", "import grpc"]);
    } catch {
      ctx.skip("no python3-grpcio on this machine");
    }
    const { stdout } = await run(python, ["test/fixtures/python-reflection.py", `127.0.0.1:${svc.port}`]);
    const answers = JSON.parse(stdout) as Record<string, Record<string, unknown>>;
    for (const version of ["v1", "v1alpha"]) {
      expect(answers[version], version).toEqual({
        responses: 2,
        lists_profile_service: true,
        lists_health: true,
        file_has_profile_proto: true,
      });
    }
  });
});

describe("grpc.health.v1 over grpc-js", () => {
  it("answers Check for the server and ProfileService without a token, and NOT_FOUND for others", async () => {
    expect((await health.check("")).status).toBe(Status.SERVING);
    expect((await health.check(ProfileService.typeName)).status).toBe(Status.SERVING);
    expect((await health.check(LIVENESS)).status).toBe(Status.SERVING);
    await expect(health.check("no.such.Service")).rejects.toMatchObject({ code: Code.NotFound });
  });

  it("lists every registered status", async () => {
    const { statuses } = await health.list();
    expect(Object.fromEntries(Object.entries(statuses).map(([k, v]) => [k, v.status]))).toEqual({
      "": Status.SERVING,
      [ProfileService.typeName]: Status.SERVING,
      [LIVENESS]: Status.SERVING,
    });
  });

  it("streams the current status, then each change, on Watch", async () => {
    const service = "test.Watched";
    const call = health.watch(service);
    const received: Status[] = [];
    call.on("data", (res: { status: Status }) => received.push(res.status));
    call.on("error", () => {}); // the cancel below ends it with CANCELLED
    try {
      // Unknown at first: SERVICE_UNKNOWN, and the call stays open.
      await expect.poll(() => received).toEqual([Status.SERVICE_UNKNOWN]);
      svc.app.health.set(service, Status.SERVING);
      await expect.poll(() => received).toEqual([Status.SERVICE_UNKNOWN, Status.SERVING]);
      svc.app.health.set(service, Status.SERVING); // no change, no message
      svc.app.health.set(service, Status.NOT_SERVING);
      await expect.poll(() => received).toEqual([Status.SERVICE_UNKNOWN, Status.SERVING, Status.NOT_SERVING]);
    } finally {
      call.cancel();
    }
  });
});

describe("server reflection", () => {
  // Our own reflection, on the Connect port (the gRPC port answers with @grpc/reflection: see the listing test).
  const transport = () => createGrpcTransport({ baseUrl: `http://127.0.0.1:${svc.httpPort}` });

  it("v1alpha answers on one stream: files with their dependencies, each dependency once, and errors in band", async () => {
    const client = createClient(ServerReflection, transport());
    const requests = [
      create(ServerReflectionRequestSchema, {
        host: "h",
        messageRequest: { case: "fileContainingSymbol", value: "profile.v1.ProfileService.GetProfile" },
      }),
      create(ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: "profile.v1.Profile" },
      }),
      create(ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: "no.such.Thing" },
      }),
      create(ServerReflectionRequestSchema, {
        messageRequest: { case: "fileByFilename", value: "google/protobuf/timestamp.proto" },
      }),
    ];
    async function* send() {
      yield* requests;
    }
    const answers: ServerReflectionResponse[] = [];
    for await (const res of client.serverReflectionInfo(send())) answers.push(res);
    expect(answers).toHaveLength(4);

    const names = (i: number) => {
      const r = answers[i]!.messageResponse;
      if (r.case !== "fileDescriptorResponse") throw new Error(`answer ${i} is ${r.case}`);
      return r.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
    };
    const first = names(0);
    expect(first[0]).toBe("profile/v1/profile.proto");
    expect(first).toEqual(
      expect.arrayContaining([
        "google/protobuf/field_mask.proto",
        "google/protobuf/struct.proto",
        "google/protobuf/timestamp.proto",
      ]),
    );
    expect(answers[0]!.validHost).toBe("h");
    expect(answers[0]!.originalRequest?.messageRequest).toEqual(requests[0]!.messageRequest);
    // Asked again: the file itself, but not the dependencies this stream already has.
    expect(names(1)).toEqual(["profile/v1/profile.proto"]);
    expect(answers[2]!.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: Code.NotFound } });
    expect(names(3)).toEqual(["google/protobuf/timestamp.proto"]);
  });

  it("v1 resolves fields, nested types and enum values, and reports extension numbers", async () => {
    const reflection = new Reflection(fileRegistryOf([ProfileService.file, v1.ServerReflection.file]), []);
    const ask = async (messageRequest: v1.ServerReflectionRequest["messageRequest"]) => {
      async function* one() {
        yield create(v1.ServerReflectionRequestSchema, { messageRequest });
      }
      const impl = reflection.v1();
      const answers = [];
      for await (const res of impl.serverReflectionInfo(one(), undefined as never) as AsyncIterable<{
        messageResponse: unknown;
      }>) {
        answers.push(res.messageResponse);
      }
      return answers[0] as v1.ServerReflectionResponse["messageResponse"];
    };
    const fileOf = async (symbol: string) => {
      const r = await ask({ case: "fileContainingSymbol", value: symbol });
      return r.case === "fileDescriptorResponse"
        ? fromBinary(FileDescriptorProtoSchema, r.value.fileDescriptorProto[0]!).name
        : r.case;
    };
    expect(await fileOf("profile.v1.Profile.first_name")).toBe("profile/v1/profile.proto");
    expect(await fileOf("google.protobuf.NullValue")).toBe("google/protobuf/struct.proto");
    expect(await fileOf("google.protobuf.NULL_VALUE")).toBe("google/protobuf/struct.proto");
    expect(await fileOf("profile.v1.Profile.no_such_field")).toBe("errorResponse");
    expect(await ask({ case: "allExtensionNumbersOfType", value: "profile.v1.Profile" })).toEqual({
      case: "allExtensionNumbersResponse",
      value: expect.objectContaining({ baseTypeName: "profile.v1.Profile", extensionNumber: [] }),
    });
    expect(await ask({ case: "allExtensionNumbersOfType", value: "no.Such" })).toMatchObject({
      case: "errorResponse",
      value: { errorCode: Code.NotFound },
    });
    expect(
      await ask({
        case: "fileContainingExtension",
        value: create(v1.ExtensionRequestSchema, { containingType: "profile.v1.Profile", extensionNumber: 100 }),
      }),
    ).toMatchObject({ case: "errorResponse", value: { errorCode: Code.NotFound } });
  });
});
