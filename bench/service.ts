// The service under test runs in a child process, as in production, which on
// two cores also keeps the Node load generator's event loop and garbage
// collector out of the service's. The entry is the real binary, src/main.ts.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
export const SERVICE_ENTRY = "src/main.ts";

export interface ServiceOptions {
  name: string;
  /** Environment for src/main.ts (DATABASE_URL, REDIS_URL, JWT_SECRET, ...). */
  env: Readonly<Record<string, string>>;
  /** The service's stdout (its pino log) and stderr go here. */
  logDir: string;
  /** When set, run under `node --cpu-prof` and write the profile into this folder on exit. */
  cpuProfileDir?: string;
}

export interface ServiceProcess {
  readonly name: string;
  readonly port: number;
  readonly baseUrl: string;
  readonly logFile: string;
  /** Bytes logged so far; marks the start and end of a scenario in the log. */
  logSize(): number;
  /** SIGTERM (the binary closes its server and pools), then waits for exit. */
  stop(): Promise<void>;
}

export async function startService(options: ServiceOptions): Promise<ServiceProcess> {
  const port = await freePort();
  const logFile = join(options.logDir, `${options.name}.log`);
  const errFile = join(options.logDir, `${options.name}.stderr`);
  const out = openSync(logFile, "w");
  const err = openSync(errFile, "w");
  const nodeArgs = ["--import", "tsx"];
  if (options.cpuProfileDir !== undefined) nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`);
  const child = spawn(process.execPath, [...nodeArgs, SERVICE_ENTRY], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      NODE_ENV: "production",
      // Scenarios decide what is warm; the metrics port is not needed.
      WARMUP_LIMIT: "0",
      METRICS_PORT: "0",
      ...options.env,
      PORT: String(port),
      HOST: "127.0.0.1",
    },
    stdio: ["ignore", out, err],
  });
  closeSync(out);
  closeSync(err);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const describeFailure = () => `${options.name} failed to start:\n${tail(errFile)}${tail(logFile)}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(describeFailure());
    if (readFileSync(logFile, "utf8").includes('"msg":"profile-service listening"')) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(describeFailure());
    }
    await sleep(50);
  }

  return {
    name: options.name,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    logFile,
    logSize: () => statSync(logFile).size,
    stop: () => stopChild(child, exited),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill("SIGTERM");
  // The graceful path waits for open HTTP/2 sessions; a stuck one must not hang the bench.
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
