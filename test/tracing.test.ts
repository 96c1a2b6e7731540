// Traces, with the SDK's in-memory exporter in place of OTLP, against real
// PostgreSQL and Redis, through real clients: the span tree of a GetProfile
// miss on both transports, the caller's traceparent as its parent, and a
// watcher's delivery linked to the span of the write that caused it.

import { randomBytes } from "node:crypto";
import { create, type DescMessage } from "@bufbuild/protobuf";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ProfileService } from "../gen/profile/v1/profile_pb.js";
import { createLogger } from "../src/log/logger.js";
import { CACHE_READ_SPAN } from "../src/profiles/cache-span.js";
import { LEASE_PREFIX } from "../src/store/cache-store.js";
import { startTracing, type RunningTracing } from "../src/tracing/start.js";
import { genericClient, grpc } from "./support/grpc-client.js";
import { randomUserId, startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";
import { WatchStream } from "./support/watch-stream.js";

const exporter = new InMemorySpanExporter();
let tracing: RunningTracing | undefined;
let svc: TestService;
let client: ReturnType<typeof genericClient>;
let userId: string;
let token: string;
let watcherToken: string;

beforeAll(async () => {
  // Before the service, as main.ts does: the drivers are instrumented first.
  tracing = await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }, createLogger("silent"), {
    exporter,
  });
  svc = await startTestService({ label: "tracing", env: { EVENT_POLL_INTERVAL_MS: "200" } });
  client = genericClient(ProfileService, `127.0.0.1:${svc.port}`);
  userId = randomUserId();
  token = await mintToken(userId, { scope: "profiles:read profiles:write" });
  watcherToken = await mintToken("search-indexer", { scope: "profiles:watch" });
});
afterAll(async () => {
  client?.close();
  await svc?.close();
  await tracing?.shutdown();
});
beforeEach(() => exporter.reset());

/** A caller's trace context: a fresh trace id and the caller's own span id. */
function callerContext() {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

function call<M extends keyof (typeof ProfileService)["method"]>(
  method: M,
  request: Record<string, unknown>,
  traceparent: string,
  bearer = token,
): Promise<unknown> {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${bearer}`);
  md.set("traceparent", traceparent);
  md.set("tracestate", "caller=1");
  const desc = ProfileService.method[method];
  return new Promise((resolve, reject) =>
    client[method]!.call(
      client,
      create(desc.input as DescMessage, request as never),
      md,
      { deadline: Date.now() + 10_000 },
      (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)),
    ),
  );
}

async function spansUntil(done: (spans: ReadableSpan[]) => boolean, what: string): Promise<ReadableSpan[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const spans = exporter.getFinishedSpans();
    if (done(spans)) return spans;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${spans.map((s) => s.name).join(", ")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const isRedis = (s: ReadableSpan) =>
  s.attributes["db.system"] === "redis" || s.attributes["db.system.name"] === "redis";
const isPostgres = (s: ReadableSpan) =>
  s.attributes["db.system"] === "postgresql" || s.attributes["db.system.name"] === "postgresql";

async function createProfile(): Promise<void> {
  await call(
    "updateProfile",
    { userId, profile: { firstName: "Ada" }, updateMask: { paths: ["first_name"] } },
    callerContext().traceparent,
  );
}

describe("a GetProfile miss", () => {
  it("on grpc-js: server span (the caller's traceparent its parent) → cache decision → Redis and PostgreSQL", async () => {
    await createProfile();
    await svc.redis.del(svc.keys.profile(userId));
    exporter.reset();
    const caller = callerContext();
    await call("getProfile", { userId }, caller.traceparent);
    // The fill lands after the answer: wait for its Redis span too.
    const spans = await spansUntil(
      (all) => all.some((s) => s.kind === SpanKind.SERVER) && all.filter(isRedis).length >= 2,
      "the server span and the lease fill",
    );

    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.name).toBe("profile.v1.ProfileService/GetProfile");
    expect(server.spanContext().traceId).toBe(caller.traceId);
    expect(parentOf(server)).toBe(caller.spanId);
    expect(server.parentSpanContext?.isRemote).toBe(true);
    expect(server.spanContext().traceState?.get("caller")).toBe("1");
    expect(server.attributes).toMatchObject({
      "rpc.system": "grpc",
      "rpc.service": "profile.v1.ProfileService",
      "rpc.method": "GetProfile",
      "rpc.grpc.status_code": 0,
      "network.peer.address": "127.0.0.1",
    });
    expect(server.attributes["network.peer.port"]).toEqual(expect.any(Number));

    const cache = spans.find((s) => s.name === CACHE_READ_SPAN)!;
    expect(cache).toBeDefined();
    expect(parentOf(cache)).toBe(server.spanContext().spanId);
    expect(cache.attributes).toMatchObject({ "cache.type": ["profile"], "cache.status": "miss" });

    // The lease read, then the fill under it: both children of the decision.
    const redis = spans.filter(isRedis);
    expect(redis.length).toBeGreaterThanOrEqual(2);
    for (const r of redis) expect(parentOf(r)).toBe(cache.spanContext().spanId);
    // Never the cached value (personal data): the command's name only.
    for (const r of redis) expect(JSON.stringify(r.attributes)).not.toContain("Ada");

    const selects = spans.filter((s) => isPostgres(s) && /SELECT .* FROM profiles/.test(String(statementOf(s))));
    expect(selects).toHaveLength(1);
    expect(parentOf(selects[0]!)).toBe(cache.spanContext().spanId);
    // Every span of the call is in the caller's trace.
    for (const s of spans) expect(s.spanContext().traceId).toBe(caller.traceId);
  });

  it("on Connect-ES (HTTP_PORT): the same server span, parented on the traceparent header", async () => {
    await svc.redis.del(svc.keys.profile(userId));
    exporter.reset();
    const caller = callerContext();
    await svc.connect.getProfile(
      { userId },
      { headers: { authorization: `Bearer ${token}`, traceparent: caller.traceparent } },
    );
    const spans = await spansUntil((all) => all.some((s) => s.kind === SpanKind.SERVER), "the server span");
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.name).toBe("profile.v1.ProfileService/GetProfile");
    expect(parentOf(server)).toBe(caller.spanId);
    expect(server.attributes).toMatchObject({
      "rpc.system": "grpc",
      "rpc.method": "GetProfile",
      "rpc.grpc.status_code": 0,
    });
    const cache = spans.find((s) => s.name === CACHE_READ_SPAN)!;
    expect(parentOf(cache)).toBe(server.spanContext().spanId);
    expect(spans.filter(isPostgres).some((s) => parentOf(s) === cache.spanContext().spanId)).toBe(true);
  });

  it("a hit is a cache decision with no PostgreSQL child; a NOT_FOUND sets the status code, not an error", async () => {
    await call("getProfile", { userId }, callerContext().traceparent);
    // The fill lands after the answer: wait for it, so the next read is a hit.
    await expect.poll(() => svc.redis.get(svc.keys.profile(userId))).toMatch(/^\{/);
    exporter.reset();
    await call("getProfile", { userId }, callerContext().traceparent);
    let spans = await spansUntil((all) => all.some((s) => s.kind === SpanKind.SERVER), "the server span");
    expect(spans.find((s) => s.name === CACHE_READ_SPAN)?.attributes["cache.status"]).toBe("hit");
    expect(spans.filter(isPostgres)).toHaveLength(0);

    exporter.reset();
    const nobody = randomUserId();
    await expect(
      call("getProfile", { userId: nobody }, callerContext().traceparent, await mintToken(nobody)),
    ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    spans = await spansUntil((all) => all.some((s) => s.kind === SpanKind.SERVER), "the server span");
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.attributes["rpc.grpc.status_code"]).toBe(grpc.status.NOT_FOUND);
    expect(server.status.code).toBe(0); // UNSET: the caller's mistake, not the server's
  });
});

describe("probes", () => {
  it("a health check makes no span; the ProfileService call after it does", async () => {
    const health = new grpc.Client(`127.0.0.1:${svc.port}`, grpc.credentials.createInsecure());
    try {
      exporter.reset();
      // grpc.health.v1.HealthCheckRequest {} is empty; the reply's first byte says SERVING (field 1 = 1).
      const reply = await new Promise<Buffer>((resolve, reject) =>
        health.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          new grpc.Metadata(),
          { deadline: Date.now() + 10_000 },
          (err: grpc.ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(res!)),
        ),
      );
      expect(reply).toEqual(Buffer.from([0x08, 0x01]));
      await call("getProfile", { userId }, callerContext().traceparent);
      const spans = await spansUntil((all) => all.some((s) => s.kind === SpanKind.SERVER), "the server span");
      expect(spans.filter((s) => s.kind === SpanKind.SERVER).map((s) => s.name)).toEqual([
        "profile.v1.ProfileService/GetProfile",
      ]);
    } finally {
      health.close();
    }
  });
});

describe("a read behind another replica's lease", () => {
  it("waits in a 'cache lease wait' span under the cache decision", async () => {
    await svc.redis.set(svc.keys.profile(userId), `${LEASE_PREFIX}other-replica:1`, "PX", 800);
    exporter.reset();
    await call("getProfile", { userId }, callerContext().traceparent);
    const spans = await spansUntil((all) => all.some((s) => s.kind === SpanKind.SERVER), "the server span");
    const cache = spans.find((s) => s.name === CACHE_READ_SPAN)!;
    const wait = spans.find((s) => s.name === "cache lease wait")!;
    expect(wait).toBeDefined();
    expect(parentOf(wait)).toBe(cache.spanContext().spanId);
    // It waited out the other filler's lease (800 ms from the SET), polling Redis meanwhile.
    const ms = (wait.duration[0] * 1e9 + wait.duration[1]) / 1e6;
    expect(ms).toBeGreaterThanOrEqual(100);
    expect(spans.filter((s) => isRedis(s) && parentOf(s) === wait.spanContext().spanId).length).toBeGreaterThan(0);
  });
});

describe("a write's event", () => {
  it("carries the write's trace context through the outbox; the watcher's delivery span links to it", async () => {
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${watcherToken}`);
    const watch = new WatchStream(
      client.watchProfileEvents!.call(
        client,
        create(ProfileService.method.watchProfileEvents.input, { userIds: [userId] }),
        md,
      ) as never,
    );
    try {
      await watch.until((w) => w.bookmarks.length > 0, 10_000, "the first bookmark");
      exporter.reset();
      const caller = callerContext();
      await call(
        "updateProfile",
        { userId, profile: { lastName: "Lovelace" }, updateMask: { paths: ["last_name"] } },
        caller.traceparent,
      );
      // "From now" may still include the profile's earlier write: this write's event is the last_name one.
      const ours = () => watch.events.find((e) => e.updatedFields.includes("last_name"));
      await watch.until(() => ours() !== undefined, 10_000, "the event");
      const event = ours()!;
      const isDelivery = (s: ReadableSpan) =>
        s.name === "deliver profile_updated" && s.attributes["messaging.message.id"] === event.eventId;
      const spans = await spansUntil((all) => all.some(isDelivery), "the delivery span");
      const write = spans.find((s) => s.kind === SpanKind.SERVER && s.name.endsWith("/UpdateProfile"))!;
      expect(write.spanContext().traceId).toBe(caller.traceId);
      // The write's statement (row, then outbox event, in one) is its child.
      expect(spans.some((s) => isPostgres(s) && parentOf(s) === write.spanContext().spanId)).toBe(true);

      const { rows } = await svc.app.stores.db.query<{ trace_context: string | null }>(
        "SELECT trace_context FROM profile_events WHERE id = $1::bigint",
        [event.eventId],
      );
      expect(rows[0]!.trace_context).toBe(`00-${caller.traceId}-${write.spanContext().spanId}-01`);

      const delivery = spans.find(isDelivery)!;
      expect(delivery.kind).toBe(SpanKind.PRODUCER);
      expect(delivery.links).toHaveLength(1);
      expect(delivery.links[0]!.context.traceId).toBe(caller.traceId);
      expect(delivery.links[0]!.context.spanId).toBe(write.spanContext().spanId);
      // Under the watch call's own span (still open: it ends with the stream).
      expect(delivery.spanContext().traceId).not.toBe(caller.traceId);
    } finally {
      watch.call.cancel();
    }
    const spans = await spansUntil(
      (all) => all.some((s) => s.name.endsWith("/WatchProfileEvents")),
      "the watch span, at cancel",
    );
    const stream = spans.find((s) => s.name.endsWith("/WatchProfileEvents"))!;
    expect(stream.attributes["rpc.grpc.status_code"]).toBe(grpc.status.CANCELLED);
    for (const delivery of spans.filter((s) => s.name === "deliver profile_updated")) {
      expect(parentOf(delivery)).toBe(stream.spanContext().spanId);
    }
  });
});

function statementOf(span: ReadableSpan): unknown {
  return span.attributes["db.statement"] ?? span.attributes["db.query.text"];
}
