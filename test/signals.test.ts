// SIGTERM sent to exactly the process the README starts, as a container
// runtime sends it to its entrypoint: the drain runs (log "stopped"), the
// process exits 0, its ports close, and nothing it started is left running.

import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChildService } from "./support/child-service.js";
import { freePort, refused } from "./support/child-process.js";
import { createTestDatabase, testRedisUrl, uniqueKeyPrefix, type TestDatabase } from "./support/servers.js";
import { TEST_JWT_SECRET } from "./support/tokens.js";

const run = promisify(execFile);
const readme = readFileSync("README.md", "utf8");
const dataDir = mkdtempSync(join(tmpdir(), "ps-signals-"));
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase("signals");
});
afterAll(async () => {
  await database?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The README's command on the line that ends with `# <comment>`, as words. */
function readmeCommand(comment: string): string[] {
  const line = readme.split("\n").find((l) => l.trimEnd().endsWith(`# ${comment}`));
  expect(line, `a README line ending with "# ${comment}"`).toBeDefined();
  return line!.split("#")[0]!.trim().split(/\s+/);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function expectDrainOn(signal: NodeJS.Signals, service: ChildService): Promise<void> {
  const pid = service.child.pid!;
  try {
    const exited = once(service.child, "exit");
    // Only this process, never its group: that is what a container runtime does.
    process.kill(pid, signal);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      exited,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no exit within 20 s of ${signal}`)), 20_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(service.exitCode).toBe(0);
    expect(service.logs.find((l) => l.msg === "shutting down")?.signal).toBe(signal);
    expect(service.logs.some((l) => l.msg === "stopped")).toBe(true);
    expect(await refused(service.port)).toBe(true);
    expect(await refused(service.metricsPort)).toBe(true);
    // The service was spawned in a group of its own: nothing of it may outlive it.
    await expect.poll(() => groupAlive(pid), { timeout: 2000 }).toBe(false);
  } finally {
    if (groupAlive(pid)) process.kill(-pid, "SIGKILL");
  }
}

describe("a signal to the process the README starts", () => {
  it.each(["SIGTERM", "SIGINT"] as const)(
    "npm start (the getting-started command, embedded default): npm hands %s to the service, which drains",
    async (signal) => {
      expect(readme).toContain("npm ci && npm start    # install, then start the service on :50051");
      const env: Record<string, string | undefined> = {
        DATABASE_URL: undefined,
        REDIS_URL: undefined,
        JWT_SECRET: undefined,
        JWT_JWKS_URL: undefined,
        NODE_ENV: undefined,
        REDIS_KEY_PREFIX: undefined,
        DATA_DIR: dataDir,
        PORT: String(await freePort()),
        METRICS_PORT: String(await freePort()),
        LOG_LEVEL: "info",
      };
      await expectDrainOn(signal, await ChildService.start(env, ["npm", "start"]));
    },
    120_000,
  );

  it("the production command (node on the build output): the service itself gets it, and drains", async () => {
    const build = readmeCommand("compile src/ and gen/ to dist/");
    expect(build.slice(-3)).toEqual(["npm", "run", "build"]);
    await run("npm", ["run", "build"], { timeout: 120_000 });
    const [node, ...args] = readmeCommand("the production start command");
    expect(node).toBe("node");
    const service = await ChildService.start(
      {
        NODE_ENV: "production",
        DATABASE_URL: database.url,
        REDIS_URL: testRedisUrl,
        REDIS_KEY_PREFIX: uniqueKeyPrefix("signals"),
        JWT_SECRET: TEST_JWT_SECRET,
        PORT: String(await freePort()),
        METRICS_PORT: String(await freePort()),
        HOST: "127.0.0.1",
        LOG_LEVEL: "info",
        WARMUP_LIMIT: "0",
      },
      // The node that runs this suite stands in for the README's `node`.
      [process.execPath, ...args],
    );
    await expectDrainOn("SIGTERM", service);
  }, 120_000);
});
