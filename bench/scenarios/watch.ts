// WatchProfileEvents fan-out: N watchers (10,000 in the full run) on one
// fresh instance, all watching one user, and a series of writes of that user
// one after another. Latency runs from the write's acknowledgement to the
// event's arrival on each watcher (an event that beats the ack counts as 0).
// Also the instance's memory per watcher and its CPU per streamed event.

import { randomUUID } from "node:crypto";
import * as http2 from "node:http2";
import { readFileSync } from "node:fs";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { WatchProfileEventsRequestSchema, WatchProfileEventsResponseSchema } from "../../gen/profile/v1/profile_pb.js";
import { grpcFrame, protocolHeaders, updateFirstName } from "../calls.js";
import { sleep } from "../child.js";
import type { BenchContext } from "../context.js";
import { cpuWindow } from "../cpu.js";
import { H2Client } from "../h2-client.js";
import { newHistogram, summarize } from "../latency.js";
import { BenchFailure } from "../measure.js";
import { measurement, type Measurement } from "../measurement.js";
import { startService } from "../service.js";

/** Streams per HTTP/2 connection, as a client library would spread them. */
const STREAMS_PER_SESSION = 100;
/** Watchers arrive in waves, as clients connecting over a few seconds would. */
const WAVE = 500;

const rssBytes = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;

async function until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new BenchFailure(`watch: ${what}`);
    await sleep(2);
  }
}

export async function watchFanout(ctx: BenchContext): Promise<Measurement[]> {
  const { watchers, watchWrites: writes } = ctx.options;
  // Every watcher here is the same caller; the per-caller limit would refuse most of them.
  const env = { ...ctx.serviceEnv, WATCH_MAX_STREAMS_PER_CALLER: String(2 * watchers) };
  const service = await startService("watch", env, ctx.workDir);
  const ep = service.endpoint("grpc");
  const sessions = Array.from({ length: Math.ceil(watchers / STREAMS_PER_SESSION) }, () => http2.connect(ep.url));
  for (const s of sessions) s.on("error", () => {});
  const writer = await H2Client.connect(ep.url, 1);
  try {
    // A user of its own, created by its first write, writing itself.
    const user = randomUUID();
    const writeToken = await ctx.token(user);
    const write = async (n: number) => {
      const call = updateFirstName(ep.protocol, user, `w${n}`, writeToken);
      call.expect(await writer.call(call));
    };
    await write(0);
    await sleep(500);
    const rssBefore = rssBytes(service.pid);

    const received = new Array<number>(watchers).fill(0);
    let pending: { target: number; arrivals: number[] } | undefined;
    let live = 0;
    let failure: string | undefined;
    const request = grpcFrame(
      toBinary(WatchProfileEventsRequestSchema, create(WatchProfileEventsRequestSchema, { userIds: [user] })),
    );
    const headers = {
      ":method": "POST",
      ":path": "/profile.v1.ProfileService/WatchProfileEvents",
      ...protocolHeaders("grpc"),
      authorization: `Bearer ${await ctx.token("bench-watcher", ["profiles:watch"])}`,
    };
    const opened = performance.now();
    for (let i = 0; i < watchers; i++) {
      if (i > 0 && i % WAVE === 0)
        await until(
          `${live}/${i} watchers live (${failure ?? "no failure"})`,
          () => live >= i || failure !== undefined,
          120_000,
        );
      if (failure !== undefined) throw new BenchFailure(`watch: a stream failed: ${failure}`);
      const stream = sessions[i % sessions.length]!.request(headers);
      let buffer: Buffer = Buffer.alloc(0);
      let first = true;
      stream.on("data", (chunk: Buffer) => {
        const now = performance.now();
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
        while (buffer.length >= 5 && buffer.length >= 5 + buffer.readUInt32BE(1)) {
          const length = buffer.readUInt32BE(1);
          const msg = fromBinary(WatchProfileEventsResponseSchema, buffer.subarray(5, 5 + length));
          buffer = buffer.subarray(5 + length);
          if (first) {
            first = false;
            live++;
          }
          if (msg.kind.case === "event" && ++received[i]! === pending?.target) pending.arrivals.push(now);
        }
      });
      stream.on("error", (err) => (failure ??= String(err)));
      stream.end(request);
    }
    await until(`${live}/${watchers} watchers live`, () => live >= watchers || failure !== undefined, 120_000);
    if (failure !== undefined) throw new BenchFailure(`watch: a stream failed: ${failure}`);
    const openSeconds = (performance.now() - opened) / 1000;
    await sleep(1000);
    const rssPerWatcher = (rssBytes(service.pid) - rssBefore) / watchers;

    const histogram = newHistogram();
    const fromStart = newHistogram();
    let beforeAck = 0;
    const cpu = cpuWindow(service.pid);
    const ownCpu = process.cpuUsage();
    const t0 = performance.now();
    for (let n = 1; n <= writes; n++) {
      pending = { target: n, arrivals: [] };
      const started = performance.now();
      await write(n);
      const acked = performance.now();
      const p = pending;
      await until(
        `write ${n}: ${p.arrivals.length}/${watchers} watchers got the event`,
        () => p.arrivals.length >= watchers,
        30_000,
      );
      for (const t of p.arrivals) {
        // The writer's own replica can deliver before the writer has its reply.
        if (t < acked) beforeAck++;
        histogram.recordValue(Math.max(1, Math.round((t - acked) * 1000)));
        fromStart.recordValue(Math.max(1, Math.round((t - started) * 1000)));
      }
    }
    const elapsedMs = performance.now() - t0;
    const { foreignCpu, targetCpuMs: cpuMs } = cpu.finish();
    const own = process.cpuUsage(ownCpu);
    return [
      measurement(
        "watch",
        { requests: histogram.totalCount, errors: 0, elapsedMs, histogram },
        {
          kind: "scenario",
          generator: "node",
          concurrency: watchers,
          cpuMs,
          foreignCpu,
          extra: {
            watchers,
            writes,
            arrivedBeforeAck: beforeAck,
            writeStartToEvent: summarize(fromStart),
            rssPerWatcherKiB: Math.round(rssPerWatcher / 102.4) / 10,
            secondsToOpenAll: Math.round(openSeconds * 10) / 10,
            // The watchers' own reading (this process): if it nears the window, the client is the bottleneck.
            benchCpuShareOfWindow: Math.round(((own.user + own.system) / 1000 / elapsedMs) * 100) / 100,
            serviceCpuShareOfWindow: Math.round(((cpuMs ?? 0) / elapsedMs) * 100) / 100,
          },
          notes: [
            `${watchers} watchers of one user on one instance, ${writes} writes one after another`,
            "calls/s here: events delivered per second; CPU per call: per streamed event",
          ],
        },
      ),
    ];
  } finally {
    writer.close();
    for (const s of sessions) s.destroy();
    await service.stop();
  }
}
