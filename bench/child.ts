// Every server the bench measures (the service and the bare floors) runs in a
// child process started the same way, `node --import tsx <entry>`, so each one
// gets the same CPU treatment. On two cores it also keeps the Node load
// generator's event loop and garbage collector out of theirs.

import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { untilReady } from "../test/support/child-process.js";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** The child's stdout (the service's pino log). */
  readonly logFile: string;
  /** Bytes logged so far: marks where a measurement starts and ends in the log. */
  logSize(): number;
  /** SIGTERM, then waits for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

export interface ChildOptions {
  name: string;
  /** Path from the repository root. */
  entry: string;
  env: Readonly<Record<string, string>>;
  logDir: string;
  /** The child is up once its stdout contains this. */
  ready: string;
  nodeArgs?: readonly string[];
}

export async function startChild(o: ChildOptions): Promise<Child> {
  const logFile = join(o.logDir, `${o.name}.log`);
  const errFile = join(o.logDir, `${o.name}.stderr`);
  const out = openSync(logFile, "w");
  const err = openSync(errFile, "w");
  const child = spawn(process.execPath, ["--import", "tsx", ...(o.nodeArgs ?? []), o.entry], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? "", NODE_ENV: "production", ...o.env },
    stdio: ["ignore", out, err],
  });
  closeSync(out);
  closeSync(err);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await untilReady(child, {
    name: o.name,
    ready: () => readFileSync(logFile, "utf8").includes(o.ready),
    output: () => `${tail(errFile)}${tail(logFile)}`,
    timeoutMs: 30_000,
  });
  return {
    name: o.name,
    pid: child.pid!,
    logFile,
    logSize: () => statSync(logFile).size,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      // The graceful path waits for open HTTP/2 sessions; a stuck one must not hang the bench.
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
