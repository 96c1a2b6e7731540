// A restart of the caller itself loses nothing: a watching process (see
// support/watch-consumer-process.ts) that applies each event in the same
// transaction that stores its token is SIGKILLed again and again while
// writes go on, and one of the replicas is SIGKILLed under it too. Its read
// model ends up with every committed event exactly once, in commit order.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ProfileClient } from "../client/src/index.js";
import { untilReady } from "./support/child-process.js";
import { committedEventIds, startReplicas, type ReplicaSet } from "./support/replicas.js";
import { createTestDatabase, type TestDatabase } from "./support/servers.js";
import { randomUserId } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

let set: ReplicaSet;
let consumerDb: TestDatabase;
let service: pg.Pool;
let model: pg.Pool;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  set = await startReplicas("client_restart", 2, { WATCH_PROGRESS_INTERVAL_SECONDS: "1" });
  consumerDb = await createTestDatabase("client_restart_model");
  service = new pg.Pool({ connectionString: set.database.url, max: 2 });
  model = new pg.Pool({ connectionString: consumerDb.url, max: 2 });
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await service?.end();
  await model?.end();
  await consumerDb?.drop();
  await set?.close();
});

async function startConsumer(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/watch-consumer-process.ts"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  await untilReady(child, {
    name: "consumer",
    ready: () => out.includes("live"),
    output: () => out,
    timeoutMs: 30_000,
  });
  return child;
}

async function applied(): Promise<{ event_id: string; run: number }[]> {
  const { rows } = await model.query<{ event_id: string; run: number }>(
    "SELECT event_id, run FROM consumer_events ORDER BY seq",
  );
  return rows;
}

it("SIGKILLed five times (and a replica once) while writes go on: every committed event applied once, in order", async () => {
  const user = randomUserId();
  const token = await mintToken(user);
  const addresses = set.replicas.map((r) => `127.0.0.1:${r.port}`);
  const env = { ADDRESSES: addresses.join(","), TOKEN: token, USER_ID: user, CONSUMER_DATABASE_URL: consumerDb.url };
  const writer = new ProfileClient({ addresses: [...addresses].reverse(), token });
  // The first run watches from now: writes start once it is live.
  let consumer = await startConsumer(env);
  let writing = true;
  let acked = 0;
  const writes = (async () => {
    for (let n = 0; writing; n++) {
      await writer.updateProfile({ profile: { bio: `w${n}` } });
      acked++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const kills: number[] = [];
  try {
    for (let round = 0; round < 5; round++) {
      const before = (await applied()).length;
      await expect.poll(async () => (await applied()).length, { timeout: 15_000 }).toBeGreaterThan(before + 15);
      if (round === 2) {
        // The caller's replica goes too (either one may hold the stream: kill the first, the consumer's first choice).
        set.replicas[0]!.kill("SIGKILL");
        await set.replicas[0]!.exited();
        await expect.poll(async () => (await applied()).length, { timeout: 15_000 }).toBeGreaterThan(before + 30);
        await set.replicas[0]!.start();
      }
      consumer.kill("SIGKILL");
      await once(consumer, "exit");
      kills.push((await applied()).length);
      // Writes go on while the caller is down.
      const ackedAtKill = acked;
      await expect.poll(() => acked, { timeout: 15_000 }).toBeGreaterThan(ackedAtKill + 10);
      consumer = await startConsumer(env);
    }
    const before = acked;
    await expect.poll(() => acked, { timeout: 15_000 }).toBeGreaterThan(before + 10);
    writing = false;
    await writes;
    const committed = await committedEventIds(service, user);
    // A lost event would leave this short: the comparison below then says which.
    await expect
      .poll(async () => (await applied()).length, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(committed.length)
      .catch(() => undefined);
    // A duplicate would come after: give it time to show up.
    await new Promise((r) => setTimeout(r, 2000));
    consumer.kill("SIGTERM");
    await once(consumer, "exit");

    const rows = await applied();
    const ids = rows.map((r) => r.event_id);
    const seen = new Set(ids);
    const runs = new Set(rows.map((r) => r.run)).size;
    console.log(
      `caller restarts: ${kills.length} SIGKILLs of the caller (applied at each: ${kills.join(", ")}) and one of a replica; ` +
        `${committed.length} committed, ${ids.length} applied over ${runs} runs, ` +
        `${committed.filter((id) => !seen.has(id)).length} lost, ${ids.length - seen.size} duplicates`,
    );
    expect(ids).toEqual(committed);
    expect(runs).toBe(6);
  } finally {
    writing = false;
    await writes.catch(() => undefined);
    writer.close();
  }
}, 180_000);
