// The README's commands, run as written against a live server in embedded
// mode (no PostgreSQL, Redis or JWT settings). A README example that rots
// fails here. The only change made is the port, so runs never collide.

import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChildService } from "./support/child-service.js";
import { freePort } from "./support/child-process.js";
import { DEMO_USER_ID } from "../src/profiles/demo-profile.js";

const run = promisify(execFile);
// Each example is a child process (npm, npx, buf, curl) that starts from cold:
// on a loaded 2-core machine one took over 3 s, so a test running ten of them
// gets minutes, not the suite's 30 s.
const EXAMPLES_TIMEOUT_MS = 180_000;
const readme = readFileSync("README.md", "utf8");
const dataDir = mkdtempSync(join(tmpdir(), "ps-readme-"));
let service: ChildService;
let env: Record<string, string>;

/** Every ```sh block, with backslash continuations joined, as a list of commands. */
function shellCommands(): string[] {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((block) =>
    block
      .replace(/\\\n\s*/g, "")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#")),
  );
}

beforeAll(async () => {
  const port = await freePort();
  env = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const k of ["DATABASE_URL", "REDIS_URL", "JWT_SECRET", "JWT_JWKS_URL", "NODE_ENV", "REDIS_KEY_PREFIX"])
    delete env[k];
  Object.assign(env, { DATA_DIR: dataDir, PORT: String(port), METRICS_PORT: "0", LOG_LEVEL: "warn" });
  // The quick start's second half, as written: `npm start`.
  expect(shellCommands()).toContain(
    "npm ci && npm start    # install, then start the service on :50051 (gRPC) and :8080 (Connect)",
  );
  service = await ChildService.start({ ...env, LOG_LEVEL: "info" }, ["npm", "start"]);
}, 120_000);
afterAll(async () => {
  await service?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const local = (command: string) =>
  command
    .replaceAll("127.0.0.1:50051", `127.0.0.1:${service.port}`)
    .replaceAll("127.0.0.1:8080", `127.0.0.1:${service.httpPort}`);

async function bash(command: string, extraEnv: Record<string, string> = {}) {
  return run("bash", ["-c", command], { env: { ...env, ...extraEnv }, timeout: 60_000 });
}

describe("README", () => {
  it("documents the two commands, and the test command is the one CI runs", () => {
    const commands = shellCommands();
    expect(commands).toContain("npm test               # run the test suite");
    expect(readFileSync(".ci/run", "utf8")).toMatch(/^npm test$/m);
  });

  it("npm start prints a buf curl line that returns the demo profile as printed", async () => {
    const printed = () => service.lines.map((l) => l.trim()).find((l) => l.startsWith("npx buf curl"));
    await expect.poll(printed, { timeout: 20_000 }).toBeDefined();
    const line = printed();
    expect(service.output).toContain("DEVELOPMENT MODE");
    const { stdout } = await bash(local(line!));
    expect(JSON.parse(stdout).profile).toMatchObject({
      userId: DEMO_USER_ID,
      firstName: "John",
    });
  });

  it("npm start prints a plain curl line (Connect, HTTP/1.1) that returns the demo profile as printed", async () => {
    const printed = () => service.lines.map((l) => l.trim()).find((l) => l.startsWith("curl "));
    await expect.poll(printed, { timeout: 20_000 }).toBeDefined();
    const { stdout } = await bash(local(printed()!));
    expect(JSON.parse(stdout).profile).toMatchObject({ firstName: "John" });
  });

  it("runs every plain curl example against the Connect port", { timeout: EXAMPLES_TIMEOUT_MS }, async () => {
    const commands = shellCommands();
    const tokenLine = commands.find((c) => c.startsWith("TOKEN=$(npm run -s token"))!;
    const { stdout: token } = await bash(`${tokenLine}; printf %s "$TOKEN"`);
    const curls = commands.filter((c) => c.startsWith("curl "));
    expect(curls.length).toBeGreaterThanOrEqual(1);
    for (const command of curls) {
      expect(command).toContain("127.0.0.1:8080");
      const { stdout } = await bash(local(command), { TOKEN: token });
      // The token's user has no profile yet, or has one from the buf curl examples: either is a Connect answer.
      const answer = JSON.parse(stdout) as { profile?: unknown; code?: string };
      expect(answer.profile !== undefined || answer.code === "not_found", stdout).toBe(true);
    }
  });

  it("runs the token command and every buf curl example", { timeout: EXAMPLES_TIMEOUT_MS }, async () => {
    const commands = shellCommands();
    const tokenLine = commands.find((c) => c.startsWith("TOKEN=$(npm run -s token"));
    expect(tokenLine).toBeDefined();
    const { stdout: token } = await bash(`${tokenLine}; printf %s "$TOKEN"`);
    expect(token.split(".")).toHaveLength(3);

    const curls = commands.filter((c) => c.startsWith("npx buf curl"));
    const streaming = curls.filter((c) => c.includes("WatchProfileEvents"));
    const unary = curls.filter((c) => !streaming.includes(c));
    expect(unary.length).toBeGreaterThanOrEqual(6);
    expect(streaming.length).toBeGreaterThanOrEqual(1);

    for (const command of unary) {
      const { stdout } = await bash(local(command), { TOKEN: token });
      if (command.includes("--list-services")) {
        expect(stdout.split("\n")).toEqual(
          expect.arrayContaining(["profile.v1.ProfileService", "grpc.health.v1.Health"]),
        );
      } else {
        expect(() => JSON.parse(stdout), command).not.toThrow();
      }
      if (command.includes("Health/Check")) expect(JSON.parse(stdout).status).toBe("SERVING");
      if (command.includes("BatchGetProfiles")) expect(JSON.parse(stdout).missingUserIds).toHaveLength(1);
    }

    for (const command of streaming) {
      const child = spawn("bash", ["-c", local(command)], { env: { ...env, TOKEN: token }, detached: true });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      try {
        await expect.poll(() => out, { timeout: 20_000 }).toContain("bookmark");
        await bash(local(unary.find((c) => c.includes("UpdateProfile"))!), { TOKEN: token });
        await expect.poll(() => out, { timeout: 10_000 }).toContain("EVENT_TYPE_PROFILE_UPDATED");
      } finally {
        process.kill(-child.pid!, "SIGINT");
      }
    }
  });
});
