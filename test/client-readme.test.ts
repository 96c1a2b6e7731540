// The README's client example ("Watching changes"), run as written: saved
// next to a node_modules/@profile-service/client that links to client/, run
// with tsx against a live service. The only change made is the port. It
// prints the event of a write, resumes from its token file after a SIGKILL
// (printing the event written while it was down), and relists when the token
// in that file is not one the service can honour.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ProfileClient } from "../client/src/index.js";
import { DEMO_USER_ID } from "../src/profiles/demo-profile.js";
import { startTestService, type TestService } from "./support/service.js";
import { mintToken } from "./support/tokens.js";

// The README example watches the demo user.
const USER = DEMO_USER_ID;
const dir = mkdtempSync(join(tmpdir(), "ps-client-readme-"));
let svc: TestService;
let token: string;
let writer: ProfileClient;
const running = new Set<ChildProcess>();

/** The ```ts block of the "Watching changes" section. */
function example(): string {
  const readme = readFileSync("README.md", "utf8");
  const section = readme.slice(readme.indexOf("## Watching changes"));
  const block = /```ts\n([\s\S]*?)```/.exec(section.slice(0, section.indexOf("\n## ", 3)));
  if (block === null) throw new Error('no ts example in "Watching changes"');
  return block[1]!;
}

beforeAll(async () => {
  svc = await startTestService({ label: "client_readme", env: { WATCH_PROGRESS_INTERVAL_SECONDS: "1" } });
  token = await mintToken(USER);
  writer = new ProfileClient({ addresses: [`127.0.0.1:${svc.port}`], token });
  mkdirSync(join(dir, "node_modules", "@profile-service"), { recursive: true });
  symlinkSync(resolve("client"), join(dir, "node_modules", "@profile-service", "client"));
  // A caller's project is an ES module package, as this one is.
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module", private: true }));
  writeFileSync(join(dir, "watch.ts"), example().replaceAll("127.0.0.1:50051", `127.0.0.1:${svc.port}`));
});
afterAll(async () => {
  for (const child of running) child.kill("SIGKILL");
  writer?.close();
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

class Example {
  output = "";
  readonly child: ChildProcess;

  constructor() {
    // tsx from this repository: the example's directory has only the client in its node_modules.
    this.child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), join(dir, "watch.ts")], {
      cwd: dir,
      env: { ...process.env, TOKEN: token, NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(this.child);
    this.child.once("exit", () => running.delete(this.child));
    this.child.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    this.child.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
  }

  async kill(): Promise<void> {
    this.child.kill("SIGKILL");
    if (this.child.exitCode === null) await once(this.child, "exit");
  }
}

it("watches, resumes from its token file after a SIGKILL, and relists when the token is refused", async () => {
  const tokenFile = join(dir, "watch-token");
  const first = new Example();
  // The first bookmark's token lands in the file: the watch is live.
  await expect.poll(() => existsSync(tokenFile), { timeout: 30_000 }).toBe(true);
  const beforeEvent = readFileSync(tokenFile, "utf8");
  await writer.updateProfile({ profile: { firstName: "Seen live" } });
  await expect.poll(() => first.output, { timeout: 10_000 }).toContain(`PROFILE_UPDATED ${USER}`);
  // The client saves the event's token (with an fsync) just after printing it; a kill before that
  // lands would rightly see the event again on resume.
  await expect.poll(() => readFileSync(tokenFile, "utf8"), { timeout: 10_000 }).not.toBe(beforeEvent);
  await first.kill();

  await writer.updatePreferences({ preferences: { theme: "dark" }, updateMask: { paths: ["theme"] } });
  const second = new Example();
  await expect.poll(() => second.output, { timeout: 30_000 }).toContain(`PREFERENCES_UPDATED ${USER}`);
  expect(second.output).not.toContain("PROFILE_UPDATED");
  await second.kill();

  writeFileSync(tokenFile, "not-a-token-of-this-service");
  const third = new Example();
  await expect.poll(() => third.output, { timeout: 30_000 }).toContain("relisted 1");
  await writer.updateProfile({ profile: { firstName: "After the relist" } });
  await expect.poll(() => third.output, { timeout: 10_000 }).toContain(`PROFILE_UPDATED ${USER}`);
  await third.kill();
}, 120_000);
