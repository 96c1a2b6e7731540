// `npm test` on a machine without running servers: the suite's globalSetup
// starts private ones from the installed binaries and stops them afterwards,
// or stops with one line naming the Debian packages. Each case runs vitest in
// a child process, with the suite's own setup and a one-test probe, so the
// shared servers this run uses are never touched.

import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { refused } from "./support/child-process.js";
import { adminDatabaseUrl, testRedisUrl } from "./support/servers.js";

const dir = mkdtempSync(join(tmpdir(), "ps-test-servers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stderr: string;
  probe: { databaseUrl: string; redisUrl: string } | undefined;
}

async function runProbe(env: Record<string, string>, name: string): Promise<Run> {
  const out = join(dir, `${name}.json`);
  const clean: Record<string, string> = {};
  // The child is a run of its own: none of this run's vitest or server settings leak in.
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("VITEST") && !k.startsWith("TEST_")) clean[k] = v;
  }
  const child = execFile(
    process.execPath,
    ["node_modules/vitest/vitest.mjs", "run", "--config", "test/fixtures/vitest.config.ts"],
    { env: { ...clean, ...env, PROBE_OUT: out }, timeout: 120_000 },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  const probe = existsSync(out) ? JSON.parse(readFileSync(out, "utf8")) : undefined;
  return { code, stderr, probe };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe("the servers npm test runs against", () => {
  it("are private ones on free ports when none is to be used, and are stopped when the run ends", async () => {
    // TEST_PRIVATE_SERVERS=1 stands in for a machine where nothing answers on 5432 and 6379.
    const run = await runProbe({ TEST_PRIVATE_SERVERS: "1" }, "private");
    expect(run.code, run.stderr).toBe(0);
    expect(run.probe).toBeDefined();
    const { databaseUrl, redisUrl } = run.probe!;
    expect(portOf(databaseUrl)).not.toBe(5432);
    expect(portOf(redisUrl)).not.toBe(6379);
    expect(await refused(portOf(databaseUrl))).toBe(true);
    expect(await refused(portOf(redisUrl))).toBe(true);
  }, 120_000);

  it("are the ones TEST_DATABASE_URL and TEST_REDIS_URL name, when they are set", async () => {
    const run = await runProbe(
      { TEST_DATABASE_URL: adminDatabaseUrl, TEST_REDIS_URL: testRedisUrl, TEST_PRIVATE_SERVERS: "1" },
      "given",
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.probe).toEqual({ databaseUrl: adminDatabaseUrl, redisUrl: testRedisUrl });
  }, 120_000);

  it("cannot be started without the binaries: the run stops with one line naming the Debian packages", async () => {
    const emptyBin = mkdtempSync(join(dir, "bin-"));
    const run = await runProbe(
      { TEST_PRIVATE_SERVERS: "1", PATH: emptyBin, TEST_PG_BINDIR: join(emptyBin, "none") },
      "missing",
    );
    expect(run.code).not.toBe(0);
    expect(run.probe).toBeUndefined();
    const lines = run.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("apt-get install -y postgresql redis-server");
  }, 120_000);
});
