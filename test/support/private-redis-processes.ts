// The processes and the temporary directory of one private Redis deployment
// (a cluster, or a primary with its replica and Sentinel), cleaned up even
// when the test process itself dies.
//
// A test that fails runs its afterAll, which calls destroy(). A worker that is
// killed runs nothing, so a small shell watchdog, in its own process group,
// holds the read end of a pipe from this process: when the pipe closes
// without destroy() having run, it kills every server it was told about and
// removes the directory.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis, type RedisOptions } from "ioredis";

/** A redis-server on the loopback only that keeps nothing on disk: a test's throwaway instance. */
export const THROWAWAY_REDIS_ARGS: readonly string[] = [
  ...["--bind", "127.0.0.1", "--protected-mode", "no"],
  ...["--save", "", "--appendonly", "no"],
];

const WATCHDOG = `
pids=""
while read -r pid; do pids="$pids $pid"; done
[ -n "$pids" ] && kill -9 $pids 2>/dev/null
rm -rf "$1"
`;

export class RedisProcesses {
  readonly dir: string;
  private readonly watchdog: ChildProcess;
  private readonly children = new Set<ChildProcess>();

  constructor(label: string) {
    this.dir = mkdtempSync(join(tmpdir(), `ps-${label}-`));
    this.watchdog = spawn("sh", ["-c", WATCHDOG, "sh", this.dir], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    });
    this.watchdog.unref();
    (this.watchdog.stdin as unknown as { unref(): void }).unref();
  }

  /** Starts `redis-server` with `args`; its output goes to `<dir>/<name>.log`. */
  spawn(name: string, args: readonly string[]): ChildProcess {
    const log = join(this.dir, `${name}.log`);
    const child = spawn("redis-server", [...args, "--logfile", log], { stdio: "ignore" });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    if (child.pid !== undefined) this.watchdog.stdin!.write(`${child.pid}\n`);
    return child;
  }

  /** The end of a server's log, for errors that would otherwise say only "did not answer". */
  logTail(name: string): string {
    try {
      return readFileSync(join(this.dir, `${name}.log`), "utf8")
        .split("\n")
        .slice(-5)
        .join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** SIGKILL: the server gets no chance to close connections or save anything. */
  async kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await exited;
  }

  async destroy(): Promise<void> {
    this.watchdog.kill("SIGKILL");
    await Promise.all([...this.children].map((c) => this.kill(c)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolves once a server at `port` answers PING (with `options` for AUTH and TLS). */
export async function waitForPing(port: number, options: RedisOptions = {}, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = new Redis({
      host: "127.0.0.1",
      port,
      ...options,
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
    });
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer`, { cause: err });
      await sleep(50);
    } finally {
      probe.disconnect();
    }
  }
}

/** Polls `check` until it returns a value other than undefined. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`, { cause: last });
    await sleep(50);
  }
}
