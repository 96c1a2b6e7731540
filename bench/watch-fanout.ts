// Fan-out of WatchProfileEvents: latency from a write's acknowledgement to the
// event's arrival on every watcher, with 1,000 and 10,000 watchers on one
// instance, and the instance's memory per watcher.
//
//   npm run bench:watch [-- --watchers 1000,10000 --writes 20]
//
// The service runs as a child process (the real src/main.ts) so its memory is
// its own; watchers are raw HTTP/2 gRPC streams from this process.

import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import * as hdr from "hdr-histogram-js";
import { SignJWT } from "jose";
import pg from "pg";
import { decodeUnary, GrpcStatus, requestFrame } from "./grpc-wire.js";
import { H2GrpcClient } from "./h2-client.js";
import {
  UpdateProfileRequestSchema,
  UpdateProfileResponseSchema,
  WatchProfileEventsRequestSchema,
  WatchProfileEventsResponseSchema,
} from "../gen/profile/v1/profile_pb.js";

const { values: args } = parseArgs({
  options: {
    watchers: { type: "string", default: "1000,10000" },
    writes: { type: "string", default: "20" },
    /** Streams per HTTP/2 connection, as a client library would spread them. */
    "streams-per-session": { type: "string", default: "100" },
  },
});
const watcherCounts = args.watchers.split(",").map(Number);
const writes = Number(args.writes);
const streamsPerSession = Number(args["streams-per-session"]);

const SECRET = "bench-secret-that-is-at-least-32-bytes-long";
const adminUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

async function token(sub: string, scope = ""): Promise<string> {
  return new SignJWT(scope ? { scope } : {})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime("2h")
    .sign(new TextEncoder().encode(SECRET));
}

/** Splits a gRPC byte stream into messages. */
class FrameReader {
  private buffer: Buffer = Buffer.alloc(0);
  push(chunk: Buffer, onMessage: (bytes: Buffer) => void): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 5) {
      const length = this.buffer.readUInt32BE(1);
      if (this.buffer.length < 5 + length) return;
      onMessage(this.buffer.subarray(5, 5 + length));
      this.buffer = this.buffer.subarray(5 + length);
    }
  }
}

/** UpdateProfile as the given user; the reply's status must be OK. */
async function update(client: H2GrpcClient, auth: string, init: MessageInitShape<typeof UpdateProfileRequestSchema>): Promise<void> {
  const reply = await client.call("/profile.v1.ProfileService/UpdateProfile", requestFrame(UpdateProfileRequestSchema, init), {
    authorization: `Bearer ${auth}`,
  });
  if (reply.status !== GrpcStatus.OK) throw new Error(`UpdateProfile: grpc-status ${reply.status}: ${reply.message}`);
  decodeUnary(UpdateProfileResponseSchema, reply.body);
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function startService(databaseUrl: string, prefix: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      JWT_SECRET: SECRET,
      PORT: "0",
      HOST: "127.0.0.1",
      METRICS_PORT: "0",
      LOG_LEVEL: "info",
      WATCH_QUEUE_SIZE: "10000",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /"port":(\d+).*"msg":"profile-service listening"/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`service exited with ${code}`)));
  });
  child.stdout!.resume();
  return { child, port };
}

interface RunResult {
  watchers: number;
  latency: hdr.Histogram;
  fromStart: hdr.Histogram;
  early: number;
  rssPerWatcher: number;
  openSeconds: number;
}

async function run(watchers: number, port: number, pid: number): Promise<RunResult> {
  const url = `http://127.0.0.1:${port}`;
  const user = randomUUID();
  const watchToken = await token("bench-watcher", "profiles:watch");
  const writeToken = await token(user);
  const sessions = Array.from({ length: Math.ceil(watchers / streamsPerSession) }, () => http2.connect(url));
  const writer = await H2GrpcClient.connect(url, 1);
  await update(writer, writeToken, { profile: { firstName: "warm" } });

  global.gc?.();
  await new Promise((r) => setTimeout(r, 500));
  const rssBefore = rssBytes(pid);
  const received = new Array<number>(watchers).fill(0);
  let pending: { target: number; started: number; acked: number; arrivals: number[] } | undefined;
  let live = 0;
  let failed = 0;
  const opened = performance.now();
  const request = requestFrame(WatchProfileEventsRequestSchema, { userIds: [user] });
  const streams: http2.ClientHttp2Stream[] = [];
  // Watchers arrive in waves of 500, as clients connecting over a few seconds would.
  const openDeadline = Date.now() + 120_000;
  for (let i = 0; i < watchers; i++) {
    if (i > 0 && i % 500 === 0) {
      while (live < i) {
        if (failed > 0 || Date.now() > openDeadline) throw new Error(`${live}/${i} watchers live, ${failed} failed`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const stream = sessions[i % sessions.length]!.request({
      ":method": "POST",
      ":path": "/profile.v1.ProfileService/WatchProfileEvents",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${watchToken}`,
    });
    const reader = new FrameReader();
    let first = true;
    stream.on("data", (chunk: Buffer) =>
      reader.push(chunk, (bytes) => {
        const now = performance.now();
        const msg = fromBinary(WatchProfileEventsResponseSchema, bytes);
        if (first) {
          first = false;
          live++;
        }
        if (msg.kind.case !== "event") return;
        received[i]!++;
        if (pending !== undefined && received[i] === pending.target) pending.arrivals.push(now);
      }),
    );
    stream.on("error", (err) => {
      failed++;
      if (failed === 1) console.error(`a watch stream failed: ${String(err)}`);
    });
    stream.end(request);
    streams.push(stream);
  }
  while (live < watchers) {
    if (failed > 0 || Date.now() > openDeadline) throw new Error(`${live}/${watchers} watchers live, ${failed} failed`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const openSeconds = (performance.now() - opened) / 1000;
  await new Promise((r) => setTimeout(r, 1000));
  const rssPerWatcher = (rssBytes(pid) - rssBefore) / watchers;

  const latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const fromStart = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  let early = 0;
  for (let w = 1; w <= writes; w++) {
    pending = { target: w, started: performance.now(), acked: 0, arrivals: [] };
    await update(writer, writeToken, { profile: { firstName: `w${w}` }, updateMask: { paths: ["first_name"] } });
    pending.acked = performance.now();
    const deadline = Date.now() + 30_000;
    while (pending.arrivals.length < watchers && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    if (pending.arrivals.length < watchers) throw new Error(`write ${w}: only ${pending.arrivals.length}/${watchers} watchers got the event`);
    for (const t of pending.arrivals) {
      // The local hub can deliver before the writer's reply arrives: count those as 0 from the ack.
      if (t < pending.acked) early++;
      latency.recordValue(Math.max(1, Math.round((t - pending.acked) * 1000)));
      fromStart.recordValue(Math.max(1, Math.round((t - pending.started) * 1000)));
    }
  }
  for (const s of streams) s.close();
  for (const s of sessions) s.close();
  writer.close();
  await new Promise((r) => setTimeout(r, 1000));
  return { watchers, latency, fromStart, early, rssPerWatcher, openSeconds };
}

async function main(): Promise<void> {
  const dbName = `profile_bench_watch_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;
  const { child, port } = await startService(dbUrl.toString(), `bench:watch:${process.pid}:`);
  const ms = (h: hdr.Histogram, p: number) => (h.getValueAtPercentile(p) / 1000).toFixed(2);
  const rows: string[] = [];
  try {
    for (const n of watcherCounts) {
      const r = await run(n, port, child.pid!);
      rows.push(
        `| ${n.toLocaleString("en")} | ${ms(r.latency, 50)} | ${ms(r.latency, 99)} | ${ms(r.fromStart, 50)} | ${ms(r.fromStart, 99)} | ${(r.rssPerWatcher / 1024).toFixed(1)} KiB | ${r.openSeconds.toFixed(1)} s |`,
      );
      console.error(`done: ${n} watchers (${r.early} of ${r.latency.totalCount} arrivals beat the writer's ack)`);
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
  const cpu = cpus();
  console.log(`\nWatchProfileEvents fan-out: ${writes} writes, every watcher on the written user`);
  console.log(`machine: ${cpu.length} × ${cpu[0]?.model.trim()}, Node ${process.version}; service in a child process\n`);
  console.log("| watchers | ack→event p50 ms | ack→event p99 ms | write start→event p50 ms | write start→event p99 ms | RSS per watcher | time to open all |");
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const row of rows) console.log(row);
}

await main();
