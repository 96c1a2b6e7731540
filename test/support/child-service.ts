// The real binary (src/main.ts, or `npm start`) as a child process, for tests
// of what only a process shows: startup output, signals, exit codes, logs.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { untilReady } from "./child-process.js";
import { testRedisUrl } from "./servers.js";
import { TEST_JWT_SECRET } from "./tokens.js";

// Children still running when the test process exits (a test that timed out
// never reached its cleanup) are killed with it, so none outlives the run.
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) killGroup(child, "SIGKILL");
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

export interface ServiceEnvOptions {
  databaseUrl: string;
  keyPrefix: string;
  /** The shared test Redis unless given. */
  redisUrl?: string;
}

/**
 * The environment a test starts the binary with: its database, its key
 * prefix, the test signing secret, a free port on 127.0.0.1, info logs, no
 * warm-up; `env` goes on top.
 */
export async function serviceEnv(
  o: ServiceEnvOptions,
  env: Record<string, string | undefined> = {},
): Promise<Record<string, string | undefined>> {
  return {
    DATABASE_URL: o.databaseUrl,
    REDIS_URL: o.redisUrl ?? testRedisUrl,
    REDIS_KEY_PREFIX: o.keyPrefix,
    JWT_SECRET: TEST_JWT_SECRET,
    PORT: "0",
    HTTP_PORT: "0",
    METRICS_PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    WARMUP_LIMIT: "0",
    ...env,
  };
}

export class ChildService {
  readonly lines: string[] = [];
  output = "";
  exitCode: number | null | undefined;
  /** The gRPC port. */
  port = 0;
  /** The Connect and gRPC-Web port. */
  httpPort = 0;
  metricsPort = 0;

  private constructor(readonly child: ChildProcess) {
    // A chunk can end in the middle of a line: each stream keeps its unfinished tail.
    const collect = (stream: NodeJS.ReadableStream) => {
      let tail = "";
      stream.on("data", (d: Buffer) => {
        const text = d.toString();
        this.output += text;
        const parts = (tail + text).split("\n");
        tail = parts.pop()!;
        this.lines.push(...parts.filter((l) => l !== ""));
      });
      stream.on("end", () => {
        if (tail !== "") this.lines.push(tail);
      });
    };
    collect(child.stdout!);
    collect(child.stderr!);
    running.add(child);
    child.once("exit", (code) => {
      this.exitCode = code;
      running.delete(child);
    });
  }

  /** Starts `command` (default: node --import tsx src/main.ts) and waits for "listening". */
  static async start(
    env: Record<string, string | undefined>,
    command: string[] = [process.execPath, "--import", "tsx", "src/main.ts"],
    options: { cwd?: string; uid?: number; gid?: number } = {},
  ): Promise<ChildService> {
    const clean: Record<string, string> = {};
    // The Connect port on a free port too, unless a test picks one: parallel children must not collide on 8080.
    for (const [k, v] of Object.entries({ ...process.env, HTTP_PORT: "0", ...env })) if (v !== undefined) clean[k] = v;
    // Its own process group, so a signal reaches the node process under `npm start` too.
    const child = spawn(command[0]!, command.slice(1), {
      env: clean,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      ...options,
    });
    const service = new ChildService(child);
    await untilReady(child, {
      name: "service",
      ready: () => service.listening() !== undefined,
      output: () => service.output,
      kill: () => killGroup(child, "SIGKILL"),
    });
    const listening = service.listening()!;
    service.port = Number(listening.port);
    service.httpPort = Number(listening.http_port);
    service.metricsPort = Number(listening.metrics_port);
    return service;
  }

  private listening(): Record<string, unknown> | undefined {
    return this.logs.find((l) => l.msg === "profile-service listening");
  }

  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      this.child.kill(signal);
    }
  }

  /** Log lines that are JSON (pino). */
  get logs(): Record<string, unknown>[] {
    return this.lines.map(parseJson).filter((l): l is Record<string, unknown> => l !== undefined);
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.exitCode === undefined) {
      this.signal(signal);
      await once(this.child, "exit");
    }
    return this.exitCode ?? null;
  }
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
