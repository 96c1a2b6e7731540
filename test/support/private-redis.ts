// A redis-server of the test's own on a free port, for tests that stop,
// pause or restart Redis without touching anyone else's.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { Redis } from "ioredis";
import { requireBinary } from "./binaries.js";
import { freePort } from "./child-process.js";
import { THROWAWAY_REDIS_ARGS } from "./private-redis-processes.js";

export class PrivateRedis {
  private process: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      requireBinary("redis-server", "redis-server"),
      [...THROWAWAY_REDIS_ARGS, "--port", String(this.port)],
      { stdio: "ignore" },
    );
    this.process = child;
    const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 0 });
    probe.on("error", () => {});
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await probe.connect();
        await probe.ping();
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${this.port}`);
        probe.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    probe.disconnect();
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (child === undefined || child.exitCode !== null) return;
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await once(child, "exit");
    this.process = undefined;
  }

  /** Freezes the server: connections stay open but nothing answers. */
  pause(): void {
    this.process?.kill("SIGSTOP");
  }

  resume(): void {
    this.process?.kill("SIGCONT");
  }
}
