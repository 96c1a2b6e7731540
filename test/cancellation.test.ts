// Issue 9, item 6: a client that cancels is recorded as CANCELLED, at info
// (API) or debug (reflection) level: never OK, and never INTERNAL at error
// level, so alerts on INTERNAL do not fire on normal client behaviour. Each
// stream is cancelled the ways clients do it: grpc-js call.cancel(), an
// RST_STREAM CANCEL (after a half-close, as node:http2 sends it, or bare, as
// Go clients do), and a connection that just closes (Ctrl-C on buf curl).

import * as http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../gen/grpc/reflection/v1/reflection_pb.js";
import { WatchProfileEventsRequestSchema } from "../gen/profile/v1/profile_pb.js";
import { ChildService, serviceEnv } from "./support/child-service.js";
import { grpc, grpcProfileClient } from "./support/grpc-client.js";
import { sample, scrape } from "./support/prometheus.js";
import { sendFrames } from "./support/raw-frames.js";
import { envelope } from "./support/raw-http2.js";
import { createTestDatabase, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

let database: TestDatabase;
let service: ChildService;

beforeAll(async () => {
  database = await createTestDatabase("cancellation");
  service = await ChildService.start(
    await serviceEnv(
      { databaseUrl: database.url, keyPrefix: uniqueKeyPrefix("cancellation") },
      {
        // Reflection logs at debug: the level has to show it.
        LOG_LEVEL: "debug",
      },
    ),
  );
});
afterAll(async () => {
  await service?.stop("SIGKILL");
  await database?.drop();
});

const WATCH = {
  grpc_service: "profile.v1.ProfileService",
  grpc_method: "WatchProfileEvents",
  grpc_type: "server_stream",
};
const REFLECTION = {
  grpc_service: "grpc.reflection.v1.ServerReflection",
  grpc_method: "ServerReflectionInfo",
  grpc_type: "bidi_stream",
};

/**
 * Runs `cancel` (which opens a stream and cancels it) and checks that the
 * call was recorded once, as CANCELLED, at `level`, with nothing at error level.
 */
async function expectCancelled(
  labels: typeof WATCH,
  level: number,
  cancel: () => Promise<void>,
  recordedAs: readonly string[] = ["Canceled"],
): Promise<void> {
  const method = `${labels.grpc_service}/${labels.grpc_method}`;
  const lines = () => service.logs.filter((l) => l.method === method && (l.msg === "rpc" || l.msg === "rpc failed"));
  const before = lines().length;
  const errorsBefore = service.logs.filter((l) => (l.level as number) >= 50).length;
  const scraped = await scrape(service.metricsPort);
  const count = (text: string, code: string) =>
    sample(text, "grpc_server_handled_total", { ...labels, grpc_code: code }) ?? 0;
  await cancel();
  await expect.poll(() => lines().length, { timeout: 5000 }).toBe(before + 1);
  const line = lines().at(-1)!;
  expect(recordedAs).toContain(line.code);
  expect(line.level).toBe(level);
  const code = line.code as string;
  const after = await scrape(service.metricsPort);
  expect(count(after, code) - count(scraped, code)).toBe(1);
  for (const other of ["OK", "Canceled", "Internal", "Unknown"].filter((c) => c !== code)) {
    expect(count(after, other) - count(scraped, other), other).toBe(0);
  }
  expect(service.logs.filter((l) => (l.level as number) >= 50).length).toBe(errorsBefore);
}

/** A raw HTTP/2 stream: resolves once the first response bytes arrive. */
function openRaw(
  session: http2.ClientHttp2Session,
  path: string,
  headers: http2.OutgoingHttpHeaders,
  body: Uint8Array,
  endStream: boolean,
): Promise<http2.ClientHttp2Stream> {
  const stream = session.request(
    { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers },
    { endStream: false },
  );
  stream.on("error", () => {});
  if (endStream) stream.end(body);
  else stream.write(body);
  return new Promise((resolve, reject) => {
    stream.once("data", () => resolve(stream));
    stream.once("close", () => reject(new Error(`stream closed before any data (${stream.rstCode})`)));
  });
}

function connectRaw(): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${service.port}`);
  session.on("error", () => {});
  return session;
}

const watchRequest = (user: string) =>
  envelope(toBinary(WatchProfileEventsRequestSchema, create(WatchProfileEventsRequestSchema, { userIds: [user] })));
const listServices = envelope(
  toBinary(
    ServerReflectionRequestSchema,
    create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }),
  ),
);

describe("a cancelled watch", () => {
  it("is CANCELLED at info level when grpc-js cancels it", async () => {
    const user = randomUserId();
    const client = grpcProfileClient(`127.0.0.1:${service.port}`);
    try {
      await expectCancelled(WATCH, 30, async () => {
        const stream = new WatchStream(client.stream({ userIds: [user] }, await mintToken(user)));
        await stream.until((s) => s.received.length > 0);
        stream.cancel();
      });
    } finally {
      client.close();
    }
  });

  it("is CANCELLED at info level on an RST_STREAM CANCEL", async () => {
    const user = randomUserId();
    const session = connectRaw();
    try {
      await expectCancelled(WATCH, 30, async () => {
        const stream = await openRaw(
          session,
          "/profile.v1.ProfileService/WatchProfileEvents",
          { authorization: `Bearer ${await mintToken(user)}` },
          watchRequest(user),
          true,
        );
        stream.close(http2.constants.NGHTTP2_CANCEL);
      });
    } finally {
      session.close();
    }
  });

  it("is CANCELLED at info level when the connection just closes (Ctrl-C on buf curl)", async () => {
    const user = randomUserId();
    const session = connectRaw();
    await expectCancelled(WATCH, 30, async () => {
      await openRaw(
        session,
        "/profile.v1.ProfileService/WatchProfileEvents",
        { authorization: `Bearer ${await mintToken(user)}` },
        watchRequest(user),
        true,
      );
      session.socket.destroy();
    });
  });
});

describe("a cancelled reflection stream", () => {
  // grpc-js (through node:http2) half-closes the stream just before it resets
  // it, and reflection ends its call when the requests end: when its trailers
  // get out before the reset arrives, the call did complete, and OK is the
  // truth. What must never happen is INTERNAL, or a line at error level.
  it("is recorded at debug level as CANCELLED, or OK when it finished first, when grpc-js cancels it", async () => {
    const method = ServerReflection.method.serverReflectionInfo;
    const Client = grpc.makeGenericClientConstructor(
      {
        serverReflectionInfo: {
          path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
          requestStream: true,
          responseStream: true,
          requestSerialize: (m: unknown) => Buffer.from(toBinary(method.input, m as never)),
          requestDeserialize: (b: Buffer) => fromBinary(method.input, b),
          responseSerialize: (m: unknown) => Buffer.from(toBinary(method.output, m as never)),
          responseDeserialize: (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
        },
      },
      "ServerReflection",
    );
    const client = new Client(`127.0.0.1:${service.port}`, grpc.credentials.createInsecure()) as unknown as {
      serverReflectionInfo(): grpc.ClientDuplexStream<unknown, unknown>;
      close(): void;
    };
    try {
      await expectCancelled(
        REFLECTION,
        20,
        async () => {
          const call = client.serverReflectionInfo();
          call.on("error", () => {});
          const answered = new Promise((resolve) => call.once("data", resolve));
          call.write(create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
          await answered;
          call.cancel();
        },
        ["Canceled", "OK"],
      );
    } finally {
      client.close();
    }
  });

  it("is CANCELLED at debug level on a bare RST_STREAM CANCEL (how Go clients such as buf curl cancel)", async () => {
    await expectCancelled(REFLECTION, 20, async () => {
      const res = await sendFrames(
        service.port,
        [
          [":method", "POST"],
          [":scheme", "http"],
          [":path", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"],
          [":authority", `127.0.0.1:${service.port}`],
          ["content-type", "application/grpc"],
          ["te", "trailers"],
        ],
        listServices,
        { resetOnData: true },
      );
      expect(res.data.length).toBeGreaterThan(0);
    });
  });

  it("is CANCELLED at debug level when the connection just closes", async () => {
    const session = connectRaw();
    await expectCancelled(REFLECTION, 20, async () => {
      await openRaw(session, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", {}, listServices, false);
      session.socket.destroy();
    });
  });
});
